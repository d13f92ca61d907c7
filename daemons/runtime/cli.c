/* SPDX-License-Identifier: MIT */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "log.h"
#include "service.h"

#ifndef MMAPQ_DEFAULT_CONFIG
#define MMAPQ_DEFAULT_CONFIG "/etc/mmapq/mmapq.ini"
#endif
#ifndef MMAPQ_VERSION_STRING
#define MMAPQ_VERSION_STRING "unknown"
#endif

volatile sig_atomic_t cli_stop;
volatile sig_atomic_t cli_reload;

unsigned cli_start(void)
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

static void usage(const struct cli *c, bool want_count, bool ctl)
{
	if (ctl)
		printf("%s - inspect, feed and manage an mmapq queue (see mmapqctl(1))\n\n"
		       "Usage: %s [OPTION]... COMMAND [ARG]...\n\n"
		       "Commands:\n"
		       "  status [--json]     positions, counters and pids of the queue\n"
		       "  dump [--json]       the records in the queue, oldest first\n"
		       "  top                 a live view of the queue (q or Ctrl-C leaves)\n"
		       "  send [VALUE]...     send records to the producer's socket (standard input\n"
		       "                      if no VALUE); exit 0 once all are published\n"
		       "  metrics [--http]    the queue's state as Prometheus text\n"
		       "  consumers [--json]  the registered consumers: name, cursor, lag, pid, rate\n"
		       "  consumer remove NAME\n"
		       "                      unregister a consumer that is not attached (its records\n"
		       "                      no longer hold the producer back)\n"
		       "  recreate            rebuild the queue file with the configuration's geometry,\n"
		       "                      carrying its records and consumers over (daemons stopped)\n\n"
		       "Options:\n", c->prog, c->prog);
	else
		printf("%s - %s (see %s(8))\n\nUsage: %s [OPTION]...\n\nOptions:\n", c->prog,
		       want_count ? "writes the records of an mmapq queue to its output"
		                  : "reads records and publishes them into an mmapq queue",
		       want_count ? "mmapq-consumer" : "mmapq-producer", c->prog);
	printf("  -c, --config PATH   configuration file (default %s)\n"
	       "  -i, --instance NAME one of several queues (mmapq@NAME.target): configuration\n"
	       "                      NAME.ini beside the default one, queue file NAME.queue\n"
	       "                      and socket NAME.producer.sock beside the default ones\n"
	       "  -q, --queue PATH    queue file, overrides [queue] path\n"
	       "      --check-config  validate the configuration (and its drop-ins) and exit\n",
	       MMAPQ_DEFAULT_CONFIG);
	if (want_count)
		printf("      --count N       exit after N records\n"
		       "  -n, --name NAME     this consumer's name (default: %s); its\n"
		       "                      [consumer:NAME] section overrides [consumer]\n"
		       "      --output SPEC   overrides [consumer] output (mmapq-consumer-nats.service:\n"
		       "                      nats)\n"
		       "      --named-instance [QUEUE:]NAME\n"
		       "                      as the unit mmapq-consumer-named@[QUEUE:]NAME.service\n"
		       "                      runs it: --name NAME, and --instance QUEUE if given\n",
		       MMAPQ_CONSUMER_DEFAULT);
	if (ctl)
		printf("      --json          status, dump and consumers: JSON (schema: mmapqctl(1))\n"
		       "      --socket PATH   send: the producer's socket (default: [producer] socket)\n"
		       "      --timeout S     send: give up after S seconds without progress\n"
		       "                      (default %u, 0 = wait forever)\n"
		       "      --http          metrics: answer one HTTP request on stdin/stdout\n"
		       "                      (as mmapq-metrics.socket runs it)\n", CLI_SEND_TIMEOUT_S);
	printf("  -h, --help          show this help and exit\n"
	       "  -V, --version       show the version, the queue file format and the build\n");
}

static void version(const struct cli *c)
{
	bool sanitized = false;
#if defined(__SANITIZE_ADDRESS__)
	sanitized = true;
#endif
	printf("%s %s\n"
	       "queue file format version %" PRIu32 " (mmapqctl recreate also reads version 1)\n"
	       "build: %s%s\n",
	       c->prog, MMAPQ_VERSION_STRING, MMAPQ_FILE_VERSION,
	       cli_fault_points ? "test-only, with fault points" : "release, no fault points",
	       sanitized ? ", AddressSanitizer and UndefinedBehaviorSanitizer" : "");
}

void cli_usage_error(const struct cli *c, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: error: %s\nTry '%s --help' for more information.\n", c->prog, msg, c->prog);
	exit(EXIT_USAGE);
}

/* Digits only; at least min; exits 64 otherwise. */
static uint64_t parse_number(const struct cli *c, const char *opt, const char *s, uint64_t min,
                             const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[strspn(s, "0123456789")] || v < min)
		cli_usage_error(c, "%s: '%s' is not %s", opt, s, what);
	return (uint64_t)v;
}

/* A name a consumer may take (mmapq_consumer_name_valid); exits 64
 * otherwise. */
static const char *parse_consumer_name(const struct cli *c, const char *opt, const char *s)
{
	if (!mmapq_consumer_name_valid(s))
		cli_usage_error(c, "%s: '%s' is not a consumer name (1 to %d letters, digits and '_.@-',"
		                " not starting with '-')", opt, s, MMAPQ_CONSUMER_NAME_MAX);
	return s;
}

static unsigned parse_seconds(const struct cli *c, const char *opt, const char *s)
{
	uint64_t v = parse_number(c, opt, s, 0, "a number of seconds (0 to 86400)");

	if (v > 86400)
		cli_usage_error(c, "%s: '%s' is not a number of seconds (0 to 86400)", opt, s);
	return (unsigned)v;
}

void cli_parse(struct cli *c, int argc, char **argv, bool want_count, bool ctl)
{
	enum { OPT_CHECK = 256, OPT_COUNT, OPT_OUTPUT, OPT_JSON, OPT_SOCKET, OPT_TIMEOUT, OPT_HTTP,
	       OPT_NAMED };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"instance", required_argument, NULL, 'i'},
		{"queue", required_argument, NULL, 'q'},
		{"check-config", no_argument, NULL, OPT_CHECK},
		{"count", required_argument, NULL, OPT_COUNT},
		{"output", required_argument, NULL, OPT_OUTPUT},
		{"json", no_argument, NULL, OPT_JSON},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"timeout", required_argument, NULL, OPT_TIMEOUT},
		{"http", no_argument, NULL, OPT_HTTP},
		{"name", required_argument, NULL, 'n'},
		{"named-instance", required_argument, NULL, OPT_NAMED},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *slash = strrchr(argv[0], '/');
	int o, li = -1;

	memset(c, 0, sizeof(*c));
	c->ctl = ctl;
	c->consumer = want_count;
	c->timeout_s = CLI_SEND_TIMEOUT_S;
	c->prog = slash ? slash + 1 : argv[0];
	c->config_path = MMAPQ_DEFAULT_CONFIG;
	opterr = 0;
	/* li: the long option's index, -1 for a short one */
	while ((li = -1, o = getopt_long(argc, argv, "c:i:q:n:hV", opts, &li)) != -1) {
		switch (o) {
		case 'c':
			c->config_path = optarg;
			c->config_explicit = true;
			break;
		case 'i':
			if (!mmapq_config_instance_valid(optarg))
				cli_usage_error(c, "--instance: '%s' is not an instance name (1 to %d"
				                " letters, digits and ':_.@-')", optarg,
				                MMAPQ_INSTANCE_NAME_MAX);
			c->instance = optarg;
			break;
		case 'q':
			if (!*optarg)
				cli_usage_error(c, "--queue: empty path");
			c->queue_path = optarg;
			break;
		case OPT_CHECK:
			c->check_config = true;
			break;
		case 'n':
			if (!want_count)
				goto bad;
			c->name = parse_consumer_name(c, "--name", optarg);
			break;
		case OPT_NAMED: {
			char *colon;

			if (!want_count)
				goto bad;
			/* QUEUE:NAME or NAME; a queue's name may hold ':', a
			 * consumer's may not: split at the last one */
			snprintf(c->named_instance, sizeof(c->named_instance), "%s", optarg);
			colon = strrchr(c->named_instance, ':');
			if (colon) {
				*colon = '\0';
				if (!mmapq_config_instance_valid(c->named_instance))
					cli_usage_error(c, "--named-instance: '%s' is not an instance name (1 to"
					                " %d letters, digits and ':_.@-')", c->named_instance,
					                MMAPQ_INSTANCE_NAME_MAX);
				c->instance = c->named_instance;
			}
			c->name = parse_consumer_name(c, "--named-instance",
			                              colon ? colon + 1 : c->named_instance);
			break;
		}
		case OPT_COUNT:
			if (!want_count)
				goto bad;
			c->count = parse_number(c, "--count", optarg, 1, "a positive integer");
			break;
		case OPT_OUTPUT: {
			struct mmapq_config probe;
			const char *why;

			if (!want_count)
				goto bad;
			mmapq_config_defaults(&probe);
			why = mmapq_config_set(&probe, "consumer", "output", optarg);
			if (why)
				cli_usage_error(c, "--output: '%s' %s (allowed: auto, journal, stdout, null,"
				                " file:PATH, nats)", optarg, why);
			c->output = optarg;
			break;
		}
		case OPT_JSON:
			if (!ctl)
				goto bad;
			c->json = true;
			break;
		case OPT_SOCKET:
			if (!ctl || !*optarg)
				goto bad;
			c->socket_path = optarg;
			break;
		case OPT_HTTP:
			if (!ctl)
				goto bad;
			c->http = true;
			break;
		case OPT_TIMEOUT:
			if (!ctl)
				goto bad;
			c->timeout_s = parse_seconds(c, "--timeout", optarg);
			break;
		case 'h':
			usage(c, want_count, ctl);
			exit(EXIT_OK);
		case 'V':
			version(c);
			exit(EXIT_OK);
		default:
			goto bad;
		}
	}
	c->argi = optind;
	if (c->instance && !c->config_explicit) {
		/* DIR/mmapq.ini -> DIR/NAME.ini */
		const char *dir_end = strrchr(MMAPQ_DEFAULT_CONFIG, '/');
		int dir_len = dir_end ? (int)(dir_end - MMAPQ_DEFAULT_CONFIG) + 1 : 0;

		snprintf(c->instance_config, sizeof(c->instance_config), "%.*s%s.ini", dir_len,
		         MMAPQ_DEFAULT_CONFIG, c->instance);
		c->config_path = c->instance_config;
	}
	return;
bad:
	if (o == '?' && optopt && optopt < 256)
		cli_usage_error(c, "invalid option or missing argument: -%c", optopt);
	if (o == '?')
		cli_usage_error(c, "invalid option or missing argument: %s", argv[optind - 1]);
	if (li < 0)
		cli_usage_error(c, "option -%c is not accepted by %s", o, c->prog);
	cli_usage_error(c, "option --%s is not accepted by %s", opts[li].name, c->prog);
}

static void print_config_error(void *ctx, const char *file, unsigned line, const char *msg)
{
	if (line)
		log_error("%s:%u: %s", file, line, msg);
	else
		log_error("%s: %s", file, msg);
}

/* The files of the configuration in use, main file (unless missing) and
 * drop-ins, in the order read: for --check-config and the log. */
struct cli_files {
	char **v;
	size_t n;
};
static struct cli_files loaded;

static void cli_files_free(struct cli_files *f)
{
	for (size_t i = 0; i < f->n; i++)
		free(f->v[i]);
	free(f->v);
	f->v = NULL;
	f->n = 0;
}

/* mmapq_config_read_opts.on_file; a file that cannot be noted (no memory)
 * is only missing from what is printed. */
static void note_file(void *ctx, const char *file)
{
	struct cli_files *f = ctx;
	char **v = realloc(f->v, (f->n + 1) * sizeof(*v));

	if (!v)
		return;
	f->v = v;
	if ((v[f->n] = strdup(file)))
		f->n++;
}

int cli_load_config(struct cli *c, struct mmapq_config *cfg)
{
	struct cli_files files = {0};
	struct mmapq_config base;
	const struct mmapq_config_read_opts o = {
		.base = &base,
		.missing_ok = !c->config_explicit, /* the default file may be missing, not --config */
		.on_error = print_config_error,
		.on_file = note_file,
		.ctx = &files,
		/* the consumer's [consumer:NAME]; none for the others */
		.consumer = c->ctl || !c->consumer ? NULL : c->name ? c->name : MMAPQ_CONSUMER_DEFAULT,
	};
	int r;

	mmapq_config_defaults_for(&base, c->instance); /* the name was checked by cli_parse */
	r = mmapq_config_read(cfg, c->config_path, &o);
	if (r == -ENOENT)
		log_error("%s: no such configuration file", c->config_path);
	/* every other error went to print_config_error already */
	if (r < 0) {
		cli_files_free(&files);
		return EXIT_CONFIG;
	}
	c->config_missing = r == 1;
	cli_files_free(&loaded);
	loaded = files;
	if (c->check_config)
		c->cfg = cfg; /* for cli_check_config_result, right after */
	if (c->queue_path) {
		if (strlen(c->queue_path) >= sizeof(cfg->queue_path)) {
			log_error("--queue: path too long");
			return EXIT_CONFIG;
		}
		strcpy(cfg->queue_path, c->queue_path);
	}
	if (c->output)
		mmapq_config_set(cfg, "consumer", "output", c->output); /* checked by cli_parse */
	log_set_level(cfg->log_level);
	if (!c->ctl && !c->check_config && loaded.n > !c->config_missing) {
		for (size_t i = !c->config_missing; i < loaded.n; i++)
			log_info("configuration: drop-in %s", loaded.v[i]);
	}
	return 0;
}

bool cli_daemon_start(struct cli *c, int argc, char **argv, const char *role, bool want_count,
                      struct mmapq_config *cfg, unsigned *closed_std, int *exit_code)
{
	static char ident[32]; /* log_init keeps the pointer */
	int code;

	*closed_std = cli_start();
	snprintf(ident, sizeof(ident), "mmapq-%s", role);
	log_init(ident);
	cli_parse(c, argc, argv, want_count, false);
	if (c->argi != argc)
		cli_usage_error(c, "unexpected argument '%s'", argv[c->argi]);
	code = cli_load_config(c, cfg);
	if (code) {
		service_failed(code, "configuration error");
		*exit_code = code;
		return false;
	}
	if (c->check_config) {
		*exit_code = cli_check_config_result(c);
		return false;
	}
	log_setup(role, cfg->queue_path);
	service_init();
	return true;
}

int cli_exit_code_for_open(int r)
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

int cli_exit_code_for_run(int r)
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

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		cli_reload = 1;
	else
		cli_stop = 1;
}

void cli_signal_set(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

void cli_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: blocking calls return EINTR */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
}

static char sigbus_msg[512];
static size_t sigbus_len;

static void on_sigbus(int sig)
{
	/* async-signal-safe: a preformatted message and _exit */
	(void)sig;
	if (write(STDERR_FILENO, sigbus_msg, sigbus_len) < 0) {
		/* nothing more can be done */
	}
	_exit(EXIT_BADQUEUE);
}

void cli_sigbus_guard(const char *queue_path)
{
	struct sigaction sa;
	int n = snprintf(sigbus_msg, sizeof(sigbus_msg),
	                 "%s: fatal: %s was truncated or removed while mapped (SIGBUS)\n",
	                 log_ident(), queue_path);

	sigbus_len = n < 0 ? 0 : (size_t)n < sizeof(sigbus_msg) ? (size_t)n : sizeof(sigbus_msg) - 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

void cli_log_reload(const char *section, const char *key, const char *old_value,
                    const char *new_value, const char *why_not)
{
	if (why_not)
		log_error("reload: [%s] %s: %s -> %s not applied: %s", section, key, old_value,
		          new_value, why_not);
	else
		log_notice("reload: [%s] %s: %s -> %s (applied)", section, key, old_value, new_value);
}

/* mmapq_config_change_fn; ctx: the daemon's own keys (cli_reload_config). */
static void log_change(void *ctx, const char *section, const char *key, const char *old_value,
                       const char *new_value, int needs_restart)
{
	const struct cli_key *own = ctx;

	if (needs_restart) {
		log_warning("reload: [%s] %s: %s -> %s needs a restart, not applied", section, key,
		            old_value, new_value);
		return;
	}
	for (; own && own->section; own++)
		if (!strcmp(own->section, section) && !strcmp(own->key, key))
			return; /* the daemon says what became of it */
	cli_log_reload(section, key, old_value, new_value, NULL);
}

int cli_reload_config(struct cli *c, struct mmapq_config *running, const struct cli_key *own)
{
	struct mmapq_config next;
	int changed, live;

	cli_reload = 0;
	service_reloading();
	if (cli_load_config(c, &next) != 0) {
		log_error("reload: %s has errors; keeping the running configuration", c->config_path);
		log_set_level(running->log_level);
		service_ready("reload failed: configuration has errors, old one kept");
		return -1;
	}
	changed = mmapq_config_diff(running, &next, log_change, (void *)own);
	live = changed > 0 ? mmapq_config_diff(running, &next, NULL, NULL) : 0;
	mmapq_config_apply_live(running, &next);
	live -= mmapq_config_diff(running, &next, NULL, NULL); /* what remains needs a restart */
	log_set_level(running->log_level);
	if (!changed)
		log_notice("reload: %s unchanged", c->config_path);
	service_ready("reloaded");
	return live > 0;
}

int cli_check_config_result(const struct cli *c)
{
	size_t i = 0;

	if (c->config_missing)
		printf("%s: not found; the built-in defaults are used and valid\n", c->config_path);
	else
		printf("%s: configuration OK\n", loaded.n ? loaded.v[i++] : c->config_path);
	for (; i < loaded.n; i++)
		printf("%s: configuration OK (drop-in)\n", loaded.v[i]);
	if (c->instance)
		printf("instance %s: queue file %s, socket %s\n", c->instance, c->cfg->queue_path,
		       c->cfg->socket_path);
	return EXIT_OK;
}

struct mmapq_params cli_queue_params(const struct mmapq_config *cfg, enum mmapq_role role)
{
	struct mmapq_params p = {
		.path = cfg->queue_path,
		.role = role,
		.capacity = cfg->capacity,
		.record_size = cfg->record_size,
		.format = cfg->format,
		.sync = cfg->sync,
		.file_mode = cfg->mode,
		.spin_us = cfg->spin_us,
		.consumer = cfg->consumer[0] ? cfg->consumer : NULL,
		.start = (enum mmapq_start)cfg->start,
		.max_consumers = cfg->max_consumers,
	};
	/* An observer shows the file whatever its geometry: the configured
	 * one is what `mmapqctl recreate` would give it, not a condition. */
	if (role == MMAPQ_ROLE_OBSERVER)
		p.capacity = p.record_size = p.format = p.max_consumers = 0;
	return p;
}

/* SIGALRM while attaching: nothing to do but interrupt a kernel wait
 * (installed without SA_RESTART). */
static void on_tick(int sig)
{
	(void)sig;
}

void cli_take_signals(const sigset_t *unblocked)
{
	sigset_t ours, pending, blocked;

	cli_signal_set(&ours);
	if (sigpending(&pending) < 0)
		return;
	for (int sig = 1; sig < NSIG; sig++)
		if (sigismember(&ours, sig) == 1 && sigismember(&pending, sig) == 1) {
			/* let them in: their handlers run on the way */
			sigprocmask(SIG_SETMASK, unblocked, &blocked);
			sigprocmask(SIG_SETMASK, &blocked, NULL);
			return;
		}
}

/* mmapq_params.interrupted: a stop was requested.  With the signals
 * blocked, a pending one is let in (its handler runs) first. */
static bool stop_requested(void *ctx)
{
	if (ctx && !cli_stop)
		cli_take_signals(ctx);
	return cli_stop;
}

int cli_attach(const struct mmapq_config *cfg, enum mmapq_role role, const sigset_t *unblocked,
               struct mmapq **q)
{
	struct mmapq_params qp = cli_queue_params(cfg, role);
	const struct itimerval tick = {{0, 250000}, {0, 250000}};
	struct sigaction old_alarm;
	struct mmapq_error err;
	int r, code;

	qp.interrupted = stop_requested;
	qp.interrupted_ctx = (void *)unblocked;
	cli_sigbus_guard(qp.path);
	/* The wait for the attach lock is a kernel wait (F_OFD_SETLKW) that
	 * only a signal handler interrupts, and a stop request that comes
	 * just before it starts would be noticed only at the next signal: a
	 * timer makes sure there is one every 250 ms while we attach. */
	sigaction(SIGALRM, &(struct sigaction){.sa_handler = on_tick}, &old_alarm);
	setitimer(ITIMER_REAL, &tick, NULL);
	r = mmapq_open(&qp, q, &err);
	setitimer(ITIMER_REAL, &(struct itimerval){0}, NULL);
	sigaction(SIGALRM, &old_alarm, NULL);
	if (r == 0)
		return 0;
	if (r == -EINTR && cli_stop) {
		log_notice("%s; stopping as asked", err.msg);
		return EXIT_OK;
	}
	log_error("%s", err.msg);
	if (r == -EPROTO && !strstr(err.msg, "mmapqctl recreate")) /* not said yet (version 1) */
		log_notice("to keep its records under the new geometry, stop both daemons and run"
		           " `mmapqctl recreate` (mmapqctl(1)); or restore the old values");
	code = cli_exit_code_for_open(r);
	service_failed(code, err.msg);
	return code;
}
