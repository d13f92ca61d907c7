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
 *
 * journald's own limits: a field of up to 768 MiB and an entry of up to
 * 770 MiB are taken (systemd's journal-importer.h; a record is at most
 * 64 MiB), nothing is cut (LineMax= is for stdout streams, not this
 * protocol); an entry larger than a journal file may grow to
 * (SystemMaxFileSize=, RuntimeMaxFileSize=) is dropped by journald, which
 * says so in its own log: the protocol has no acknowledgement to tell.
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
};

/* One field of an entry: NAME (capital letters, digits and '_', not
 * starting with '_') and its value, any bytes, any length. */
struct journal_field {
	const char *name;
	const void *value;
	size_t len;
};

#define JOURNAL_FIELDS_MAX 8

/* Connect to path (JOURNAL_SOCKET).  0 or -errno. */
int journal_open(struct journal *j, const char *path);
void journal_close(struct journal *j);

/*
 * One entry of n (<= JOURNAL_FIELDS_MAX) fields, sent from where their
 * values are (no copy but into a memfd, for an entry too large for a
 * datagram).  A value holding a line end, or any other byte, goes as the
 * protocol's binary field (its length, then its bytes): binary safe.
 * Blocks while journald's socket is full; a signal handler that ran makes
 * it return -EINTR only if stop() says so (else it retries).  0 or -errno;
 * on an error nothing of the entry is stored.
 */
int journal_send(struct journal *j, const struct journal_field *fields, size_t n,
                 bool (*stop)(void));

#endif
