/* SPDX-License-Identifier: MIT */
/*
 * mmapqctl -- inspect, feed and manage a queue: one verb per command, in
 * the table below (its --help lists them in that order).  ctl.h says
 * where each verb lives.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "ctl.h"
#include "exit.h"
#include "log.h"
#include "options.h"
#include "settings.h"
#include "signals.h"
#include "start.h"

/* mmapqctl's own options, as bits: those given, those a command takes. */
enum own_option {
	OWN_JSON = 1,    /* --json */
	OWN_SOCKET = 2,  /* --socket PATH */
	OWN_TIMEOUT = 4, /* --timeout S */
	OWN_HTTP = 8,    /* --http */
};

static const struct {
	unsigned bit;
	const char *name;
} own_names[] = {
	{OWN_JSON, "--json"}, {OWN_SOCKET, "--socket"}, {OWN_TIMEOUT, "--timeout"}, {OWN_HTTP, "--http"},
};

/* mmapqctl's own options. */
struct ctl_options {
	unsigned given;          /* OWN_*: the ones on the command line */
	bool json;               /* --json: status, dump, consumers */
	const char *socket_path; /* --socket PATH: send */
	unsigned timeout_s;      /* --timeout S: send, 0 = none */
	bool http;               /* --http: metrics */
};

struct ctl {
	struct options opt;
	struct ctl_options own;
	struct settings settings;
	struct mmapq_config cfg;
	unsigned closed_std;     /* standard descriptors closed at start */
};

enum verb_flags {
	VERB_OBSERVE = 1,   /* runs on the queue opened as an observer */
	VERB_NO_STDOUT = 2, /* needs no standard output (send) */
};

struct verb {
	const char *name;
	const char *help;   /* its lines in --help's "Commands:" */
	int nargs;          /* arguments after the verb; -1: any number */
	unsigned flags;
	unsigned options;   /* OWN_*: the own options it takes (others refuse them) */
	int (*run)(struct ctl *c, char **args, int nargs);
	int (*observe)(struct mmapq *q, bool json); /* VERB_OBSERVE */
};

static int run_top(struct ctl *c, char **args, int nargs)
{
	struct mmapq_params qp = attach_params(&c->cfg, MMAPQ_ROLE_OBSERVER);

	(void)args, (void)nargs;
	attach_sigbus_guard(qp.path);
	signals_install(); /* SIGINT/SIGTERM end it cleanly (terminal restored) */
	return top_run(&qp, 1000, signals_stop);
}

/* With --socket the configuration is not read (main): the format is not
 * known then (0), and the values go as lines. */
static int run_send(struct ctl *c, char **args, int nargs)
{
	return send_records(c->own.socket_path ? c->own.socket_path : c->cfg.socket_path, nargs, args,
	                    c->cfg.format, c->own.timeout_s, START_CLOSED(c->closed_std, STDIN_FILENO));
}

static int run_metrics(struct ctl *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	attach_sigbus_guard(c->cfg.queue_path);
	return metrics(&c->cfg, c->own.http);
}

static int run_consumer(struct ctl *c, char **args, int nargs)
{
	if (nargs != 2 || strcmp(args[0], "remove"))
		options_usage_error(&c->opt, "usage: consumer remove NAME");
	/* the library checks the name (64): any a queue file may hold, so
	 * that `consumer remove -- -x` removes a consumer an older version
	 * let register under a name starting with '-' */
	attach_sigbus_guard(c->cfg.queue_path);
	return consumer_remove(&c->cfg, args[1]);
}

static int run_recreate(struct ctl *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	attach_sigbus_guard(c->cfg.queue_path);
	return recreate(&c->cfg);
}

static int run_repair(struct ctl *c, char **args, int nargs)
{
	(void)args, (void)nargs;
	attach_sigbus_guard(c->cfg.queue_path);
	return repair(&c->cfg);
}

static const struct verb verbs[] = {
	{"status", "  status [--json]     geometry, positions and depth in records and bytes, the\n"
	           "                      clean mark, the last salvage, counters and pids\n",
	 0, VERB_OBSERVE, OWN_JSON, NULL, status},
	{"dump", "  dump [--json]       the records in the queue, oldest first\n",
	 0, VERB_OBSERVE, OWN_JSON, NULL, dump},
	{"export", "  export              the records in the queue, oldest first, framed as the\n"
	           "                      producer reads them (to feed them back)\n",
	 0, VERB_OBSERVE, 0, NULL, export_records},
	{"top", "  top                 a live view of the queue (q or Ctrl-C leaves)\n",
	 0, 0, 0, run_top, NULL},
	{"send", "  send [VALUE]...     send records to the producer's socket: each VALUE one\n"
	         "                      record, else standard input as the producer reads it;\n"
	         "                      exit 0 once all are published\n",
	 -1, VERB_NO_STDOUT, OWN_SOCKET | OWN_TIMEOUT, run_send, NULL},
	{"metrics", "  metrics [--http]    the queue's state as Prometheus text\n",
	 0, 0, OWN_HTTP, run_metrics, NULL},
	{"consumers", "  consumers [--json]  the registered consumers: name, cursor, lag, pid, rate\n",
	 0, VERB_OBSERVE, OWN_JSON, NULL, consumers},
	{"consumer", "  consumer remove NAME\n"
	             "                      unregister a consumer that is not attached (its records\n"
	             "                      no longer hold the producer back)\n",
	 -1, 0, 0, run_consumer, NULL},
	{"recreate", "  recreate            rebuild the queue file with the configuration's geometry,\n"
	             "                      carrying its records, consumers and producers over\n"
	             "                      (daemons stopped)\n",
	 0, 0, 0, run_recreate, NULL},
	{"repair", "  repair              check every record and salvage a damaged queue file,\n"
	           "                      saying what it drops (daemons stopped)\n",
	 0, 0, 0, run_repair, NULL},
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

/* The verbs that take the own options in mask (all for 0), joined as
 * "status, dump or consumers" (last: " or ", " and "). */
static const char *verb_list(unsigned mask, const char *last)
{
	static char list[256];
	size_t n = 0, k = 0, total = 0;

	for (size_t i = 0; i < N_VERBS; i++)
		total += !mask || (verbs[i].options & mask);
	list[0] = '\0';
	for (size_t i = 0; i < N_VERBS && n < sizeof(list); i++) {
		if (mask && !(verbs[i].options & mask))
			continue;
		n += (size_t)snprintf(list + n, sizeof(list) - n, "%s%s",
		                      k == 0 ? "" : k + 1 == total ? last : ", ", verbs[i].name);
		k++;
	}
	return list;
}

/* Each command takes only its own options: another's is a usage error
 * naming it and the commands that take it. */
static void check_own_options(const struct ctl *c, const struct verb *v)
{
	for (size_t i = 0; i < sizeof(own_names) / sizeof(own_names[0]); i++)
		if ((c->own.given & own_names[i].bit) && !(v->options & own_names[i].bit))
			options_usage_error(&c->opt, "option %s is not accepted by %s %s (only by %s)",
			                    own_names[i].name, c->opt.prog, v->name,
			                    verb_list(own_names[i].bit, " and "));
}

static void own_option(void *ctx, struct options *o, int id, char *arg)
{
	struct ctl_options *own = ctx;

	switch (id) {
	case OPT_JSON:
		own->given |= OWN_JSON;
		own->json = true;
		break;
	case OPT_SOCKET:
		if (!*arg)
			options_usage_error(o, "--socket: empty path");
		own->given |= OWN_SOCKET;
		own->socket_path = arg;
		break;
	case OPT_TIMEOUT:
		own->given |= OWN_TIMEOUT;
		own->timeout_s = options_seconds(o, "--timeout", arg);
		break;
	case OPT_HTTP:
		own->given |= OWN_HTTP;
		own->http = true;
		break;
	}
}

/* A verb on the queue opened as an observer. */
static int observe(struct ctl *c, const struct verb *v)
{
	struct mmapq_params qp = attach_params(&c->cfg, MMAPQ_ROLE_OBSERVER);
	struct mmapq_error err;
	struct mmapq *q;
	int r, code;

	attach_sigbus_guard(qp.path);
	r = mmapq_open(&qp, &q, &err);
	if (r < 0) {
		log_error("%s", err.msg);
		return exit_code_for_open(r);
	}
	code = v->observe(q, c->own.json);
	mmapq_close(q);
	return code;
}

BUILD_DEFINE;

int main(int argc, char **argv)
{
	static struct ctl c = {.own = {.timeout_s = OPTIONS_SEND_TIMEOUT_S}};
	char commands[4096] = "";
	const struct verb *v = NULL;
	int code, nargs;

	c.closed_std = start_stdio();
	log_init("mmapqctl");
	for (size_t i = 0; i < N_VERBS; i++)
		strncat(commands, verbs[i].help, sizeof(commands) - strlen(commands) - 1);
	options_parse(&c.opt, PROG_CTL, argc, argv, own_option, &c.own, commands);
	c.settings.opt = &c.opt;
	if (c.opt.argi < argc)
		for (size_t i = 0; i < N_VERBS && !v; i++)
			if (!strcmp(argv[c.opt.argi], verbs[i].name))
				v = &verbs[i];
	nargs = argc - c.opt.argi - 1;
	if (v)
		check_own_options(&c, v);
	/* send --socket needs nothing from the configuration */
	if (v && v->run == run_send && c.own.socket_path && !c.opt.check_config)
		return run_send(&c, argv + c.opt.argi + 1, nargs);
	code = settings_load(&c.settings, &c.cfg);
	if (!code && c.opt.check_config)
		code = settings_check_result(&c.settings, &c.cfg);
	if (code || c.opt.check_config)
		goto out;
	if (c.opt.argi >= argc)
		options_usage_error(&c.opt, "missing command: %s", verb_list(0, " or "));
	if (!v || (v->nargs >= 0 && nargs != v->nargs))
		options_usage_error(&c.opt, "unknown command or extra argument: '%s' (%s)",
		                    v ? argv[c.opt.argi + 1] : argv[c.opt.argi], verb_list(0, " or "));

	if (!(v->flags & VERB_NO_STDOUT) && START_CLOSED(c.closed_std, STDOUT_FILENO)) {
		log_error("%s: standard output is closed: nowhere to print", v->name);
		code = EXIT_IOERR;
		goto out;
	}
	code = v->flags & VERB_OBSERVE ? observe(&c, v) : v->run(&c, argv + c.opt.argi + 1, nargs);
	if (fflush(stdout) != 0 && code == EXIT_OK) {
		log_error("stdout: %s", strerror(errno));
		code = EXIT_IOERR;
	}
out:
	settings_free(&c.settings);
	return code;
}
