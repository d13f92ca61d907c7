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
/* Pieces of a field in the protocol: at most name, '\n', length, value, '\n'. */
#define FIELD_PIECES 5

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
}

/* The native protocol: "NAME=value\n", or, for a value holding a line
 * end, "NAME\n", its length as 64-bit little endian, the value and "\n".
 * The pieces into iov (their lengths into le); how many. */
static size_t serialise(const struct journal_field *f, size_t n, struct iovec *iov, uint64_t *le)
{
	size_t k = 0;

	for (size_t i = 0; i < n; i++) {
		iov[k++] = (struct iovec){(char *)f[i].name, strlen(f[i].name)};
		if (!f[i].len || !memchr(f[i].value, '\n', f[i].len)) {
			iov[k++] = (struct iovec){(char *)"=", 1};
		} else {
			le[i] = htole64((uint64_t)f[i].len);
			iov[k++] = (struct iovec){(char *)"\n", 1};
			iov[k++] = (struct iovec){&le[i], sizeof(le[i])};
		}
		if (f[i].len)
			iov[k++] = (struct iovec){(void *)f[i].value, f[i].len};
		iov[k++] = (struct iovec){(char *)"\n", 1};
	}
	return k;
}

/* All of iov[0..n) to fd (advancing over short writes: iov is used up). */
static int write_all(int fd, struct iovec *iov, size_t n)
{
	while (n) {
		ssize_t k = writev(fd, iov, (int)n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		while (n && (size_t)k >= iov->iov_len) {
			k -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n) {
			iov->iov_base = (char *)iov->iov_base + k;
			iov->iov_len -= (size_t)k;
		}
	}
	return 0;
}

/* Too large for a datagram: the entry in a sealed memfd, passed as
 * SCM_RIGHTS in an empty datagram (journald reads and closes it). */
static int send_memfd(struct journal *j, struct iovec *iov, size_t n, bool (*stop)(void))
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr mh = {.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	struct cmsghdr *cm;
	int fd, r;

	fd = memfd_create("mmapq-journal", MFD_ALLOW_SEALING | MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	r = write_all(fd, iov, n);
	if (r == 0 &&
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		r = -errno;
	if (r < 0)
		goto out;
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

int journal_send(struct journal *j, const struct journal_field *fields, size_t n,
                 bool (*stop)(void))
{
	struct iovec iov[JOURNAL_FIELDS_MAX * FIELD_PIECES];
	uint64_t le[JOURNAL_FIELDS_MAX];
	struct msghdr mh = {.msg_iov = iov};

	if (n > JOURNAL_FIELDS_MAX)
		return -EINVAL;
	mh.msg_iovlen = serialise(fields, n, iov, le);
	for (;;) {
		if (sendmsg(j->fd, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno == EMSGSIZE || errno == ENOBUFS)
			return send_memfd(j, iov, mh.msg_iovlen, stop);
		if (errno != EINTR || (stop && stop()))
			return -errno;
	}
}
