/* SPDX-License-Identifier: MIT */
#include "start.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exit.h"
#include "log.h"
#include "service.h"

unsigned start_stdio(void)
{
	unsigned closed = 0;
	struct sigaction sa;

	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* the lowest free descriptor: fd itself, as 0..fd-1 are open */
		int nfd = open("/dev/null", (fd == 0 ? O_RDONLY : O_WRONLY) | O_NOCTTY);
		if (nfd != fd)
			_exit(EXIT_OSERR); /* nowhere to say it: stderr may be what is missing */
		closed |= 1u << fd;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGXFSZ, &sa, NULL);
	return closed;
}

bool start_daemon(struct options *o, struct settings *s, enum program program, int argc,
                  char **argv, options_own_fn own, void *ctx, struct mmapq_config *cfg,
                  unsigned *closed_std, int *exit_code)
{
	static char ident[32]; /* log_init keeps the pointer */
	const char *role = program == PROG_CONSUMER ? "consumer" : "producer";
	int code;

	*closed_std = start_stdio();
	snprintf(ident, sizeof(ident), "mmapq-%s", role);
	log_init(ident);
	options_parse(o, program, argc, argv, own, ctx, NULL);
	if (o->argi != argc)
		options_usage_error(o, "unexpected argument '%s'", argv[o->argi]);
	s->opt = o;
	code = settings_load(s, cfg);
	if (code) {
		service_failed(code, "configuration error");
		*exit_code = code;
		return false;
	}
	if (o->check_config) {
		*exit_code = settings_check_result(s, cfg);
		return false;
	}
	log_setup(role, cfg->queue_path);
	service_init();
	return true;
}
