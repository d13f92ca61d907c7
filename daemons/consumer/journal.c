/* SPDX-License-Identifier: MIT */
#include "journal.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* As sd-journal: a send buffer large enough for big entries in one datagram. */
#define JOURNAL_SNDBUF (8 * 1024 * 1024)

int journal_open(struct journal *j, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, size = JOURNAL_SNDBUF;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	/* SO_SNDBUFFORCE needs CAP_NET_ADMIN; the plain one is capped by wmem_max */
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	*j = (struct journal){.fd = fd};
	return 0;
}

void journal_close(struct journal *j)
{
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	free(j->buf);
	j->buf = NULL;
	j->cap = 0;
}

/* The native protocol: "NAME=value\n", or, for a value holding a newline,
 * "NAME\n" + its length as 64-bit little endian + the value + "\n". */
static int serialise(struct journal *j, const struct iovec *fields, size_t n, size_t *len)
{
	size_t need = 0, off = 0;

	for (size_t i = 0; i < n; i++)
		need += fields[i].iov_len + 1 + 8 + 1;
	if (need > j->cap) {
		char *b = realloc(j->buf, need);
		if (!b)
			return -ENOMEM;
		j->buf = b;
		j->cap = need;
	}
	for (size_t i = 0; i < n; i++) {
		const char *f = fields[i].iov_base, *eq = memchr(f, '=', fields[i].iov_len);
		if (!eq || eq == f)
			return -EINVAL;
		size_t nl = (size_t)(eq - f), vl = fields[i].iov_len - nl - 1;
		if (!memchr(eq + 1, '\n', vl)) {
			memcpy(j->buf + off, f, fields[i].iov_len);
			off += fields[i].iov_len;
		} else {
			uint64_t le = htole64((uint64_t)vl);
			memcpy(j->buf + off, f, nl);
			off += nl;
			j->buf[off++] = '\n';
			memcpy(j->buf + off, &le, sizeof(le));
			off += sizeof(le);
			memcpy(j->buf + off, eq + 1, vl);
			off += vl;
		}
		j->buf[off++] = '\n';
	}
	*len = off;
	return 0;
}

/* Too large for a datagram: the entry in a sealed memfd, passed as
 * SCM_RIGHTS in an empty datagram (journald reads and closes it). */
static int send_memfd(struct journal *j, size_t len, bool (*stop)(void))
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = {.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm;
	size_t off = 0;
	int fd, r = 0;

	fd = memfd_create("mmapq-journal", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (off < len) {
		ssize_t k = write(fd, j->buf + off, len - off);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			r = -errno;
			goto out;
		}
		off += (size_t)k;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0) {
		r = -errno;
		goto out;
	}
	memset(&ctl, 0, sizeof(ctl));
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	while (sendmsg(j->fd, &mh, MSG_NOSIGNAL) < 0) {
		if (errno != EINTR || (stop && stop())) {
			r = -errno;
			break;
		}
	}
out:
	close(fd);
	return r;
}

int journal_send(struct journal *j, const struct iovec *fields, size_t n, bool (*stop)(void))
{
	size_t len;
	int r = serialise(j, fields, n, &len);

	if (r < 0)
		return r;
	for (;;) {
		if (send(j->fd, j->buf, len, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EMSGSIZE || errno == ENOBUFS)
			return send_memfd(j, len, stop);
		if (errno != EINTR || (stop && stop()))
			return -errno;
	}
}
