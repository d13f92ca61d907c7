/* SPDX-License-Identifier: MIT */
/*
 * start.h -- the first steps of every program, in this order.
 */
#ifndef MMAPQ_START_H
#define MMAPQ_START_H

#include <stdbool.h>

#include "config.h"
#include "options.h"
#include "settings.h"

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
unsigned start_stdio(void);
#define START_CLOSED(mask, fd) (((mask) >> (fd)) & 1u)

/*
 * The daemons' start-up up to the queue, in this order: start_stdio, the
 * log, the options (own: the program's own, see options_parse), the
 * configuration (a failure is told to systemd as STATUS=/EXIT_STATUS=),
 * --check-config, the log's role and queue, the service manager.  true: go
 * on, with *closed_std from start_stdio; false: main returns *exit_code (a
 * usage or configuration error, or --check-config done).  s->consumer and
 * s->output may be set by own (the consumer's [consumer:NAME] and
 * --output).
 */
bool start_daemon(struct options *o, struct settings *s, enum program program, int argc,
                  char **argv, options_own_fn own, void *ctx, struct mmapq_config *cfg,
                  unsigned *closed_std, int *exit_code);

#endif
