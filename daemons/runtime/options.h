/* SPDX-License-Identifier: MIT */
/*
 * options.h -- the command line of the three programs: the options every
 * program takes (struct options), and one table of all options in
 * options.c saying which program takes which, so that an option of
 * another program is refused by name.  A program's own options reach the
 * program through its callback, which keeps them in a struct of its own.
 *
 * --help and --version exit 0; bad usage exits 64 (options_usage_error).
 */
#ifndef MMAPQ_OPTIONS_H
#define MMAPQ_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

enum program { PROG_PRODUCER = 1, PROG_CONSUMER = 2, PROG_CTL = 4 };

/* Options only some programs take: their ids, for the program's callback. */
enum option_id {
	OPT_COUNT = 256, /* consumer --count N */
	OPT_OUTPUT,      /* consumer --output SPEC */
	OPT_NAME,        /* producer, consumer -n, --name NAME */
	OPT_NAMED,       /* consumer --named-instance [QUEUE:]NAME */
	OPT_JSON,        /* mmapqctl --json */
	OPT_SOCKET,      /* mmapqctl --socket PATH */
	OPT_TIMEOUT,     /* mmapqctl --timeout S */
	OPT_HTTP,        /* mmapqctl --http */
};

/* What every program takes. */
struct options {
	enum program program;
	const char *prog;            /* the name it was run as (argv[0]'s last part) */
	const char *config_path;     /* --config, or the default; the instance's NAME.ini */
	bool config_explicit;        /* --config given: its file must exist */
	const char *instance;        /* --instance NAME: one of several queues on the host */
	char instance_config[4096];  /* its config_path: NAME.ini beside the default or --config */
	const char *config_beside;   /* with --instance: what --config named, NULL if not given */
	const char *queue_path;      /* --queue, overrides [queue] path */
	bool check_config;
	int argi;                    /* first non-option argument */
};

/* A program's own option id (OPT_*) with its argument (NULL if it takes
 * none); it may call options_usage_error, and set o->instance. */
typedef void (*options_own_fn)(void *ctx, struct options *o, int id, char *arg);

/* mmapqctl send: seconds without progress before it gives up. */
#define OPTIONS_SEND_TIMEOUT_S 30u

/*
 * Parses argv for program; o->argi is where the arguments start.
 * commands_help: mmapqctl's "Commands:" lines for --help (NULL for the
 * daemons).
 */
void options_parse(struct options *o, enum program program, int argc, char **argv,
                   options_own_fn own, void *ctx, const char *commands_help);
/* "PROG: error: MESSAGE" and "Try 'PROG --help' ..." on stderr, exit 64. */
void options_usage_error(const struct options *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));
/* Digits only, at least min; exits 64 otherwise. */
uint64_t options_number(const struct options *o, const char *opt, const char *s, uint64_t min,
                        const char *what);
/* 0 to 86400; exits 64 otherwise. */
unsigned options_seconds(const struct options *o, const char *opt, const char *s);
/* A name a consumer may take (mmapq_consumer_name_valid); exits 64
 * otherwise. */
const char *options_consumer_name(const struct options *o, const char *opt, const char *s);
/* A name a producer may take (the same rule); exits 64 otherwise. */
const char *options_producer_name(const struct options *o, const char *opt, const char *s);

/* mmapq's version ("2.0.0"), as --version prints it. */
extern const char options_version[];

/* Which build the program is, for --version: each program's main file
 * says BUILD_DEFINE once (the mains are compiled for each build, the
 * test-only twins with MMAPQ_FAULT_INJECTION; this code only once). */
extern const bool build_fault_points;
#ifdef MMAPQ_FAULT_INJECTION
#define BUILD_DEFINE const bool build_fault_points = true
#else
#define BUILD_DEFINE const bool build_fault_points = false
#endif

#endif
