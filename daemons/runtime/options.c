/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "exit.h"
#include "mmapq.h"

#ifndef MMAPQ_DEFAULT_CONFIG
#define MMAPQ_DEFAULT_CONFIG "/etc/mmapq/mmapq.ini"
#endif
#ifndef MMAPQ_VERSION_STRING
#define MMAPQ_VERSION_STRING "unknown"
#endif

const char options_version[] = MMAPQ_VERSION_STRING;

enum { OPT_CHECK = 300 };

/* Every option of every program, and which programs take it. */
static const struct {
	struct option opt;
	unsigned programs;
} table[] = {
	{{"config", required_argument, NULL, 'c'}, PROG_PRODUCER | PROG_CONSUMER | PROG_CTL},
	{{"instance", required_argument, NULL, 'i'}, PROG_PRODUCER | PROG_CONSUMER | PROG_CTL},
	{{"queue", required_argument, NULL, 'q'}, PROG_PRODUCER | PROG_CONSUMER | PROG_CTL},
	{{"check-config", no_argument, NULL, OPT_CHECK}, PROG_PRODUCER | PROG_CONSUMER | PROG_CTL},
	{{"count", required_argument, NULL, OPT_COUNT}, PROG_CONSUMER},
	{{"output", required_argument, NULL, OPT_OUTPUT}, PROG_CONSUMER},
	{{"json", no_argument, NULL, OPT_JSON}, PROG_CTL},
	{{"socket", required_argument, NULL, OPT_SOCKET}, PROG_CTL},
	{{"timeout", required_argument, NULL, OPT_TIMEOUT}, PROG_CTL},
	{{"http", no_argument, NULL, OPT_HTTP}, PROG_CTL},
	{{"name", required_argument, NULL, 'n'}, PROG_PRODUCER | PROG_CONSUMER},
	{{"named-instance", required_argument, NULL, OPT_NAMED}, PROG_CONSUMER},
	{{"help", no_argument, NULL, 'h'}, PROG_PRODUCER | PROG_CONSUMER | PROG_CTL},
	{{"version", no_argument, NULL, 'V'}, PROG_PRODUCER | PROG_CONSUMER | PROG_CTL},
};
#define N_OPTIONS (sizeof(table) / sizeof(table[0]))

static void usage(const struct options *o, const char *commands_help)
{
	if (o->program == PROG_CTL)
		printf("%s - inspect, feed and manage an mmapq queue (see mmapqctl(1))\n\n"
		       "Usage: %s [OPTION]... COMMAND [ARG]...\n\n"
		       "Commands:\n%s\n"
		       "Options:\n", o->prog, o->prog, commands_help);
	else
		printf("%s - %s (see %s(8))\n\nUsage: %s [OPTION]...\n\nOptions:\n", o->prog,
		       o->program == PROG_CONSUMER ? "writes the records of an mmapq queue to its output"
		                                   : "reads records and publishes them into an mmapq queue",
		       o->program == PROG_CONSUMER ? "mmapq-consumer" : "mmapq-producer", o->prog);
	printf("  -c, --config PATH   configuration file (default %s)\n"
	       "  -i, --instance NAME one of several queues (mmapq@NAME.target): configuration\n"
	       "                      NAME.ini beside the default one (or beside --config's),\n"
	       "                      queue file NAME.queue and socket NAME.producer.sock\n"
	       "                      beside the default ones\n"
	       "  -q, --queue PATH    queue file, overrides [queue] path\n"
	       "      --check-config  validate the configuration (and its drop-ins) and exit\n",
	       MMAPQ_DEFAULT_CONFIG);
	if (o->program == PROG_CONSUMER)
		printf("      --count N       exit after N records\n"
		       "  -n, --name NAME     this consumer's name (default: %s); its\n"
		       "                      [consumer:NAME] section overrides [consumer]\n"
		       "      --output SPEC   overrides [consumer] output (mmapq-consumer-nats.service:\n"
		       "                      nats)\n"
		       "      --named-instance [QUEUE:]NAME\n"
		       "                      as the unit mmapq-consumer-named@[QUEUE:]NAME.service\n"
		       "                      runs it: --name NAME, and --instance QUEUE if given\n",
		       MMAPQ_CONSUMER_DEFAULT);
	if (o->program == PROG_PRODUCER)
		printf("  -n, --name NAME     this producer's name (default: %s): the entry of\n"
		       "                      the queue's producer table its counters are kept in;\n"
		       "                      several producers of one queue each take their own\n",
		       MMAPQ_PRODUCER_DEFAULT);
	if (o->program == PROG_CTL)
		printf("      --json          status, dump and consumers: JSON (schema: mmapqctl(1))\n"
		       "      --socket PATH   send: the producer's socket (default: [producer] socket)\n"
		       "      --timeout S     send: give up after S seconds without progress\n"
		       "                      (default %u, 0 = wait forever)\n"
		       "      --http          metrics: answer one HTTP request on stdin/stdout\n"
		       "                      (as mmapq-metrics.socket runs it)\n", OPTIONS_SEND_TIMEOUT_S);
	printf("  -h, --help          show this help and exit\n"
	       "  -V, --version       show the version, the queue file format and the build\n");
}

static void version(const struct options *o)
{
	bool sanitized = false;
#if defined(__SANITIZE_ADDRESS__)
	sanitized = true;
#endif
	printf("%s %s\n"
	       "queue file format version %" PRIu32 " (mmapqctl recreate also reads versions 1 to 3)\n"
	       "build: %s%s\n",
	       o->prog, MMAPQ_VERSION_STRING, MMAPQ_FILE_VERSION,
	       build_fault_points ? "test-only, with fault points" : "release, no fault points",
	       sanitized ? ", AddressSanitizer and UndefinedBehaviorSanitizer" : "");
}

void options_usage_error(const struct options *o, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s: error: %s\nTry '%s --help' for more information.\n", o->prog, msg, o->prog);
	exit(EXIT_USAGE);
}

uint64_t options_number(const struct options *o, const char *opt, const char *s, uint64_t min,
                        const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || errno || s[strspn(s, "0123456789")] || v < min)
		options_usage_error(o, "%s: '%s' is not %s", opt, s, what);
	return (uint64_t)v;
}

const char *options_consumer_name(const struct options *o, const char *opt, const char *s)
{
	if (!mmapq_consumer_name_valid(s))
		options_usage_error(o, "%s: '%s' is not a consumer name (1 to %d letters, digits and"
		                    " '_.@-', not starting with '-')", opt, s, MMAPQ_CONSUMER_NAME_MAX);
	return s;
}

const char *options_producer_name(const struct options *o, const char *opt, const char *s)
{
	if (!mmapq_consumer_name_valid(s))
		options_usage_error(o, "%s: '%s' is not a producer name (1 to %d letters, digits and"
		                    " '_.@-', not starting with '-')", opt, s, MMAPQ_CONSUMER_NAME_MAX);
	return s;
}

unsigned options_seconds(const struct options *o, const char *opt, const char *s)
{
	uint64_t v = options_number(o, opt, s, 0, "a number of seconds (0 to 86400)");

	if (v > 86400)
		options_usage_error(o, "%s: '%s' is not a number of seconds (0 to 86400)", opt, s);
	return (unsigned)v;
}

/* An option of another program, or none at all: said, exit 64. */
static void refuse(const struct options *o, int opt, int li, char **argv)
{
	if (opt == '?' && optopt && optopt < 256)
		options_usage_error(o, "invalid option or missing argument: -%c", optopt);
	if (opt == '?')
		options_usage_error(o, "invalid option or missing argument: %s", argv[optind - 1]);
	if (li < 0)
		options_usage_error(o, "option -%c is not accepted by %s", opt, o->prog);
	options_usage_error(o, "option --%s is not accepted by %s", table[li].opt.name, o->prog);
}

/* Whether program takes the option getopt returned (li: its index in the
 * long table, -1 for a short one). */
static bool takes(enum program program, int opt, int li)
{
	if (li >= 0)
		return table[li].programs & program;
	for (size_t i = 0; i < N_OPTIONS; i++)
		if (table[i].opt.val == opt)
			return table[i].programs & program;
	return false;
}

void options_parse(struct options *o, enum program program, int argc, char **argv,
                   options_own_fn own, void *ctx, const char *commands_help)
{
	struct option longs[N_OPTIONS + 1] = {0}; /* the last one all zero: the end */
	const char *slash = strrchr(argv[0], '/');
	int opt, li = -1;

	for (size_t i = 0; i < N_OPTIONS; i++)
		longs[i] = table[i].opt;
	memset(o, 0, sizeof(*o));
	o->program = program;
	o->prog = slash ? slash + 1 : argv[0];
	o->config_path = MMAPQ_DEFAULT_CONFIG;
	opterr = 0;
	/* li: the long option's index, -1 for a short one */
	while ((li = -1, opt = getopt_long(argc, argv, "c:i:q:n:hV", longs, &li)) != -1) {
		if (opt == '?' || !takes(program, opt, li))
			refuse(o, opt, li, argv);
		switch (opt) {
		case 'c':
			o->config_path = optarg;
			o->config_explicit = true;
			break;
		case 'i':
			if (!mmapq_config_instance_valid(optarg))
				options_usage_error(o, "--instance: '%s' is not an instance name (1 to %d"
				                    " letters, digits and ':_.@-')", optarg,
				                    MMAPQ_INSTANCE_NAME_MAX);
			o->instance = optarg;
			break;
		case 'q':
			if (!*optarg)
				options_usage_error(o, "--queue: empty path");
			o->queue_path = optarg;
			break;
		case OPT_CHECK:
			o->check_config = true;
			break;
		case 'h':
			usage(o, commands_help);
			exit(EXIT_OK);
		case 'V':
			version(o);
			exit(EXIT_OK);
		default:
			own(ctx, o, opt == 'n' ? OPT_NAME : opt, optarg);
			break;
		}
	}
	o->argi = optind;
	if (o->instance) {
		/* DIR/x.ini -> DIR/NAME.ini: an instance's files are beside the
		 * default configuration or the one --config names, never that
		 * file itself (the single queue's, whose path the instance
		 * would share) */
		const char *dir_end = strrchr(o->config_path, '/');
		int dir_len = dir_end ? (int)(dir_end - o->config_path) + 1 : 0;

		if (o->config_explicit)
			o->config_beside = o->config_path;
		if (snprintf(o->instance_config, sizeof(o->instance_config), "%.*s%s.ini", dir_len,
		             o->config_path, o->instance) >= (int)sizeof(o->instance_config))
			options_usage_error(o, "--config: '%s' is too long", o->config_path);
		o->config_path = o->instance_config;
	}
}
