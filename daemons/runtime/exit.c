/* SPDX-License-Identifier: MIT */
#include "exit.h"

#include <errno.h>

int exit_code_for_open(int r)
{
	switch (-r) {
	case EBADMSG:
	case EPROTO:
	case ELOOP:
	case EISDIR:
	case ENOTRECOVERABLE:
		return EXIT_BADQUEUE;
	case ESTALE:
		return EXIT_STALE;
	case EBUSY:
		return EXIT_ROLE_TAKEN;
	case ENOENT:
	case EACCES:
	case EPERM:
	case EROFS:
	case ENOSPC:
	case EDQUOT:
	case ENOTDIR:
	case ENAMETOOLONG:
	case EFBIG:           /* RLIMIT_FSIZE (SIGXFSZ is ignored) */
		return EXIT_CANTCREATE;
	case EINVAL:
		return EXIT_CONFIG;
	default:
		return EXIT_IOERR;
	}
}

int exit_code_for_run(int r)
{
	switch (-r) {
	case 0:
	case EINTR:           /* asked to stop */
		return EXIT_OK;
	case EBADMSG:
	case EPROTO:
	case ENOTRECOVERABLE:
		return EXIT_BADQUEUE;
	case ESTALE:
		return EXIT_STALE;
	case EREMOTEIO:
		return EXIT_PROTOCOL; /* output = nats: refused for good */
	default:
		return EXIT_IOERR;    /* reading, writing, msync */
	}
}
