/* SPDX-License-Identifier: MIT */
/*
 * exit.h -- the exit codes of mmapq-producer, mmapq-consumer and mmapqctl,
 * in one place (sysexits.h values).  Each program's man page has an EXIT
 * STATUS section listing the codes it uses; tests/daemons/exit-codes.sh
 * checks that those lists agree with this table, and that the units'
 * RestartPreventExitStatus= and every code the documentation names are
 * codes of it.  Only main() turns a -errno into
 * an exit code (exit_code_for_open, exit_code_for_run); everything below
 * it returns -errno.
 *
 * EXIT_CODES(X): X(NAME, value, programs) -- P producer, C consumer, T
 * mmapqctl.  Several names share a value where the meaning depends on the
 * program (65: a bad queue file, or records mmapqctl send had rejected).
 */
#ifndef MMAPQ_EXIT_H
#define MMAPQ_EXIT_H

#define EXIT_CODES(X)                                                                     \
	X(EXIT_OK,          0,  "PCT") /* success; a stop request (SIGTERM) is a success */   \
	X(EXIT_USAGE,       64, "PCT") /* bad command line */                                 \
	X(EXIT_BADQUEUE,    65, "PCT") /* the queue file is invalid, damaged, old or of      \
	                                  another geometry: an operator must act (mmapqctl    \
	                                  repair, mmapqctl recreate), so systemd does not     \
	                                  restart */                                          \
	X(EXIT_DATAERR,     65, "T")   /* mmapqctl send: the producer rejected records */    \
	X(EXIT_NOCONSUMER,  67, "T")   /* mmapqctl consumer remove: no consumer of that name */ \
	X(EXIT_ROLE_TAKEN,  69, "PCT") /* another live process holds the role */             \
	X(EXIT_UNAVAILABLE, 69, "T")   /* mmapqctl send: no producer listening */            \
	X(EXIT_OSERR,       71, "PCT") /* no /dev/null to stand in for a closed standard     \
	                                  descriptor */                                       \
	X(EXIT_CANTCREATE,  73, "PCT") /* the queue file (or the consumer's output file, the \
	                                  producer's socket) cannot be created or opened */   \
	X(EXIT_IOERR,       74, "PCT") /* reading input or writing output failed */          \
	X(EXIT_TEMPFAIL,    75, "T")   /* mmapqctl send: records dropped (queue full,        \
	                                  on_full = drop) */                                  \
	X(EXIT_STALE,       75, "PC")  /* the queue file was deleted or replaced while in    \
	                                  use (all it held written out): a restart attaches   \
	                                  to the new one */                                   \
	X(EXIT_PROTOCOL,    76, "C")   /* output = nats: the server refuses what retrying    \
	                                  cannot change (no stream, permission, a record too  \
	                                  large): not restarted */                            \
	X(EXIT_NOPERM,      77, "T")   /* mmapqctl send: no permission to connect to the     \
	                                  socket */                                           \
	X(EXIT_CONFIG,      78, "PCT") /* bad configuration */

enum {
#define EXIT_ENUM(name, value, programs) name = value,
	EXIT_CODES(EXIT_ENUM)
#undef EXIT_ENUM
};

/* For an error of mmapq_open, or of opening a file at start (-EINVAL there
 * is the configuration's). */
int exit_code_for_open(int r);
/* For what ends a running daemon: 0 and -EINTR (a stop) are EXIT_OK; a
 * corrupt or replaced queue; -EREMOTEIO, the NATS server's refusal;
 * anything else is an I/O error. */
int exit_code_for_run(int r);

#endif
