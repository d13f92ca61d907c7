/* SPDX-License-Identifier: MIT */
/*
 * journal.h -- records to systemd-journald, with every failure reported.
 *
 * Why not sd_journal_sendv: it sends each entry unconnected to the
 * journal's socket path and returns 0 when that path does not exist ("fail
 * silently if the journal is not available"), so a consumer without
 * journald would acknowledge records that went nowhere.  Here the socket is
 * connected once at start (no journald: an error, at once) and every entry
 * is one sendmsg on that connection, so a journald that went away is
 * ECONNREFUSED, not silence.  The wire format is journald's native
 * protocol (systemd's JOURNAL_NATIVE_PROTOCOL.md); an entry too large for
 * one datagram goes as a sealed memfd, as sd-journal does it.
 */
#ifndef MMAPQ_JOURNAL_H
#define MMAPQ_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
/* A journal namespace's socket (journald@NAMESPACE, systemd-journald.service(8)) */
#define JOURNAL_NAMESPACE_SOCKET_FMT "/run/systemd/journal.%s/socket"

struct journal {
	int fd;
	char *buf;         /* the serialised entry */
	size_t cap;
};

/* Connect to path (JOURNAL_SOCKET).  0 or -errno. */
int journal_open(struct journal *j, const char *path);
void journal_close(struct journal *j);

/*
 * One entry: n fields, each "NAME=value" (value may hold any byte).
 * Blocks while journald's socket is full; a signal handler that ran makes it
 * return -EINTR only if stop() says so (else it retries).  0 or -errno; on
 * an error nothing of the entry is stored.
 */
int journal_send(struct journal *j, const struct iovec *fields, size_t n, bool (*stop)(void));

#endif
