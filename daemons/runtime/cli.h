/* SPDX-License-Identifier: MIT */
/*
 * cli.h -- what the three programs share: options, config loading, exit
 * codes, signals.
 */
#ifndef MMAPQ_CLI_H
#define MMAPQ_CLI_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "mmapq.h"

/* sysexits.h values; documented in the README and the man pages. */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 64,       /* bad command line */
	EXIT_BADQUEUE = 65,    /* the queue file is invalid, corrupt or mismatched: an operator
	                          must act (mmapqctl recreate), so systemd does not restart */
	EXIT_DATAERR = 65,     /* mmapqctl send: the producer rejected records */
	EXIT_NOCONSUMER = 67,  /* mmapqctl consumer remove: no consumer of that name */
	EXIT_ROLE_TAKEN = 69,  /* another live process holds the role */
	EXIT_UNAVAILABLE = 69, /* mmapqctl send: no producer listening */
	EXIT_OSERR = 71,       /* no /dev/null to stand in for a closed standard descriptor */
	EXIT_CANTCREATE = 73,  /* the queue file cannot be created or opened */
	EXIT_IOERR = 74,       /* reading input or writing output failed */
	EXIT_TEMPFAIL = 75,    /* mmapqctl send: records dropped (queue full, on_full = drop) */
	EXIT_PROTOCOL = 76,    /* output = nats: the server refuses what retrying cannot change
	                          (no stream, permission, a record too large): not restarted */
	EXIT_STALE = 75,       /* the queue file was deleted or replaced while in use (all it
	                          held written out): a restart attaches to the new one */
	EXIT_NOPERM = 77,      /* mmapqctl send: no permission to connect to the socket */
	EXIT_CONFIG = 78,      /* bad configuration */
};

/* Which build the program is, for --version: each program's main file
 * says CLI_DEFINE_BUILD once (the mains are compiled for each build, the
 * test-only twins with MMAPQ_FAULT_INJECTION; this code only once). */
extern const bool cli_fault_points;
#ifdef MMAPQ_FAULT_INJECTION
#define CLI_DEFINE_BUILD const bool cli_fault_points = true
#else
#define CLI_DEFINE_BUILD const bool cli_fault_points = false
#endif

/*
 * The first call of every main, before anything opens a file: standard
 * descriptors 0-2 that are closed get /dev/null (else the next open() --
 * the queue file, say -- would become "stdout" and records or log lines
 * would be written over it), and SIGXFSZ is ignored (a file size limit
 * makes writes fail with EFBIG, reported, instead of killing us).  Returns
 * the descriptors that were closed as a mask (1 << fd), so that a program
 * that needs one of them (the consumer writing to stdout, the producer
 * reading stdin) can refuse instead of using /dev/null.  Exits 71 if
 * /dev/null cannot be opened.
 */
unsigned cli_start(void);
#define CLI_CLOSED(mask, fd) (((mask) >> (fd)) & 1u)

/* mmapqctl send: seconds without progress before it gives up. */
#define CLI_SEND_TIMEOUT_S 30u

struct cli {
	const char *prog;
	bool ctl;                 /* mmapqctl, not a daemon */
	bool consumer;            /* mmapq-consumer (--count, --name) */
	const char *config_path;  /* --config, or the default of the instance */
	bool config_explicit;
	bool config_missing;      /* the default file does not exist: defaults (and drop-ins) */
	const char *instance;     /* --instance NAME: one of several queues on the host */
	char instance_config[4096]; /* its default config_path: DIR/NAME.ini */
	const struct mmapq_config *cfg; /* --check-config: what cli_load_config loaded */
	const char *queue_path;   /* --queue, overrides [queue] path */
	bool check_config;
	bool json;
	uint64_t count;           /* consumer --count N; 0 = forever */
	const char *output;       /* consumer --output SPEC: overrides [consumer] output */
	const char *name;         /* consumer --name NAME (or --named-instance [QUEUE:]NAME);
	                             NULL: the consumer "default" */
	char named_instance[MMAPQ_INSTANCE_NAME_MAX + MMAPQ_CONSUMER_NAME_MAX + 2];
	const char *socket_path;  /* mmapqctl send --socket PATH */
	unsigned timeout_s;       /* mmapqctl send --timeout S, 0 = none */
	bool http;                /* mmapqctl metrics --http */
	int argi;                 /* first non-option argument */
};

/* Parses the common options plus, for the consumer (want_count), --count,
 * --name NAME and --named-instance [QUEUE:]NAME (the template unit
 * mmapq-consumer-named@.service: --name NAME, and --instance QUEUE when
 * given); for mmapqctl (ctl) --json, --socket, --timeout and --http.
 * Exits 0 for --help and --version, 64 for bad usage (cli_usage_error). */
void cli_parse(struct cli *c, int argc, char **argv, bool want_count, bool ctl);
/* "PROG: error: MESSAGE" and "Try 'PROG --help' ..." on stderr, exit 64. */
void cli_usage_error(const struct cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Loads the config file and its drop-ins (FILE.d/NAME.ini) over the
 * defaults of the instance (--instance) or of the single queue.  A missing
 * default file means no file (the drop-ins still count); a missing explicit
 * one is an error.  Applies --queue, prints every error as FILE:LINE:
 * message.  Returns 0 or EXIT_CONFIG. */
int cli_load_config(struct cli *c, struct mmapq_config *cfg);
/* --check-config: each file that was checked (and, with --instance, the
 * instance's queue file and socket), exit 0. */
int cli_check_config_result(const struct cli *c);

/*
 * Step 1 of both daemons' start-up, in this order: cli_start, the log,
 * options (the consumer's --count: want_count), the configuration (a
 * failure is told to systemd as STATUS=/EXIT_STATUS=), --check-config,
 * the log's role and queue, the service manager.  true: go on, with
 * *closed_std from cli_start; false: main returns *exit_code (a usage or
 * configuration error, or --check-config done).
 */
bool cli_daemon_start(struct cli *c, int argc, char **argv, const char *role, bool want_count,
                      struct mmapq_config *cfg, unsigned *closed_std, int *exit_code);

/* Exit codes, for main alone: the daemons' other functions return -errno.
 * cli_exit_code_for_open: for an error of mmapq_open or of opening a file
 * at start (-EINVAL there is the configuration's).  cli_exit_code_for_run:
 * for what ends a running daemon (0 and -EINTR, a stop: EXIT_OK; a corrupt
 * or replaced queue; -EREMOTEIO, the NATS server's refusal; anything else
 * is an I/O error). */
int cli_exit_code_for_open(int r);
int cli_exit_code_for_run(int r);

/* SIGTERM/SIGINT set cli_stop (no SA_RESTART: blocking calls return
 * EINTR); SIGPIPE is ignored so a closed output is an EPIPE error. */
extern volatile sig_atomic_t cli_stop;
/* SIGHUP sets cli_reload: the main loop calls cli_reload_config. */
extern volatile sig_atomic_t cli_reload;
void cli_signals(void);
/* The signals above, as a set (for sigprocmask/ppoll). */
void cli_signal_set(sigset_t *set);
/* For a program that blocks them outside its waits: if one of them is
 * pending, let it in (with the mask unblocked) so its handler runs.  A wait
 * that returns at once because a descriptor is ready (a regular file always
 * is) never lets a blocked signal in by itself. */
void cli_take_signals(const sigset_t *unblocked);

/* A key by its section and name. */
struct cli_key {
	const char *section, *key;
};

/* Re-read the configuration (RELOADING=1 ... READY=1 around it).  Keys
 * that can change live are copied into *running and logged as applied,
 * but those of own (ended by {NULL, NULL}; own may be NULL): the daemon
 * applies them itself, which may fail, and says what became of each with
 * cli_log_reload.  Keys that need a restart are logged and left as they
 * are.  A broken file logs every FILE:LINE error and changes nothing.
 * Returns 1 if anything live changed, 0 if not, -1 if the file was
 * rejected. */
int cli_reload_config(struct cli *c, struct mmapq_config *running, const struct cli_key *own);
/* "reload: [section] key: old -> new (applied)", or with why_not:
 * "... not applied: why_not". */
void cli_log_reload(const char *section, const char *key, const char *old_value,
                    const char *new_value, const char *why_not);

/* A queue file truncated under our mapping turns the next access into
 * SIGBUS: make that a clear fatal error naming the file and exit 65
 * instead of a core dump. */
void cli_sigbus_guard(const char *queue_path);

/* The queue's parameters from the configuration, for role; for the
 * observer without any geometry (it accepts the file's, whatever it is). */
struct mmapq_params cli_queue_params(const struct mmapq_config *cfg, enum mmapq_role role);

/*
 * The daemons' attach: the SIGBUS guard, mmapq_open in role, every failure
 * logged (with what to do about a changed geometry) and reported to
 * systemd.  0, or the exit code (0 too if a stop request ended a wait for
 * the attach lock).  Every blocking point of the queue then gives up when
 * a stop was requested (mmapq_params.interrupted): a peer stopped while it
 * holds the mutex or the attach lock cannot keep us from stopping.  A
 * program that blocks its signals outside its waits passes the mask to
 * wait with (unblocked): pending signals are let in at each look; NULL if
 * they are never blocked.
 */
int cli_attach(const struct mmapq_config *cfg, enum mmapq_role role, const sigset_t *unblocked,
               struct mmapq **q);

#endif
