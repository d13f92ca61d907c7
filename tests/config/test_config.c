/* SPDX-License-Identifier: MIT */
/*
 * test_config -- common/config/: defaults, the shipped config/mmapq.ini,
 * every error kind (golden files tests/config/bad-*.ini, whose exact output
 * is tests/config/bad-*.expected), lines inih would split, NUL bytes, BOM,
 * CRLF, drop-ins (FILE.d/NAME.ini: order, override, errors per file),
 * instance defaults, diff and format_value.
 *
 * Needs MMAPQ_SOURCE_DIR (set by ctest).  MMAPQ_UPDATE_GOLDEN=1 rewrites the
 * .expected files from the actual output instead of comparing: review the
 * git diff afterwards.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "testutil.h"

/* nothing here has a queue to show on a failure */
#define EXPECT(cond, ...) TU_EXPECT(NULL, cond, __VA_ARGS__)
#define EXPECT_INT(a, b) TU_EXPECT_INT(NULL, a, b)
#define EXPECT_STR(a, b) TU_EXPECT_STR(NULL, a, b)
#define EXPECT_MEM(a, b, n) TU_EXPECT_MEM(NULL, a, b, n)

/* ---- helpers ---- */

static char *tmpdir; /* the case's own */

static char *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t size = 0;
	FILE *m;
	char chunk[4096];
	size_t n;

	if (!f)
		return NULL;
	m = open_memstream(&buf, &size);
	if (!m)
		tu_die("open_memstream");
	while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
		fwrite(chunk, 1, n, m);
	fclose(f);
	fclose(m);
	if (len)
		*len = size;
	return buf;
}

static void write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0)
		tu_die(path);
}

/* Collects errors exactly as a daemon would print them, with the file's
 * directory dropped so the golden files do not depend on where they are. */
struct errs {
	char *text;
	size_t len;
	unsigned count;
	FILE *f;
};

static void errs_init(struct errs *e)
{
	memset(e, 0, sizeof(*e));
	e->f = open_memstream(&e->text, &e->len);
	if (!e->f)
		tu_die("open_memstream");
}

/* The text so far; stays valid until errs_free. */
static const char *errs_text(struct errs *e)
{
	fflush(e->f);
	return e->text;
}

static void errs_free(struct errs *e)
{
	fclose(e->f);
	free(e->text);
}

static void on_error(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct errs *e = ctx;
	const char *base = strrchr(file, '/');

	e->count++;
	fprintf(e->f, "%s:%u: %s\n", base ? base + 1 : file, line, msg);
}

/* Writes data to tmpdir/name and loads it into *c. */
static int load_data(const char *name, const void *data, size_t len,
                     struct mmapq_config *c, struct errs *e)
{
	char *path = tu_xasprintf("%s/%s", tmpdir, name);
	int r;

	write_file(path, data, len);
	r = mmapq_config_load(c, path, on_error, e);
	free(path);
	return r;
}

static int load_str(const char *name, const char *text, struct mmapq_config *c, struct errs *e)
{
	return load_data(name, text, strlen(text), c, e);
}

/*
 * Every key, as the tests see it.  nondefault is a valid value other than
 * the default (NULL where the key accepts only its default for now).
 */
static const struct {
	const char *section, *key, *def, *nondefault;
	int needs_restart;
} keys[] = {
	{ "queue",    "path",           "/var/lib/mmapq/queue", "/srv/mmapq test/q.dat", 1 },
	{ "queue",    "size",           "4M",     "64G",             1 },
	{ "queue",    "max_record",     "64K",    "1000000",         1 },
	{ "queue",    "format",         "int",    "binary",          1 },
	{ "queue",    "sync",           "never",  "always",          0 },
	{ "queue",    "sync_interval",  "10",     "60000",           0 },
	{ "queue",    "mode",           "0660",   "0600",            1 },
	{ "queue",    "spin_us",        "0",      "10000",           0 },
	{ "queue",    "max_consumers",  "8",      "16",              1 },
	{ "queue",    "max_producers",  "4",      "16",              1 },
	{ "producer", "input",          "stdin",  "generate",        1 },
	{ "producer", "socket",         "/run/mmapq/producer.sock", "/tmp/p.sock", 1 },
	{ "producer", "generate_rate",  "1000",   "0",               0 },
	{ "producer", "on_full",        "block",  "drop",            0 },
	{ "producer", "client_timeout", "60",     "0",               0 },
	{ "producer", "ack_interval",   "1000",   "0",               0 },
	{ "producer", "ack_records",    "0",      "4294967295",      0 },
	{ "consumer", "output",         "auto",   "file:/var/log/mmapq.out", 0 },
	{ "consumer", "start",          "oldest", "newest",          1 },
	{ "consumer", "journal_identifier", "mmapq-records", "audit@host:1_a.b-c", 0 },
	{ "consumer", "journal_namespace",  "default", "records",     0 },
	{ "consumer", "seq_prefix",     "no",     "yes",             0 },
	{ "consumer", "on_full",        "block",  "skip",            0 },
	{ "consumer", "inactive_timeout", "0",    "7d",              0 },
	{ "nats",     "servers",        "nats://127.0.0.1:4222",
	  "tls://nats-1.example.com:4443, nats://[::1]:4222,10.0.0.3", 1 },
	{ "nats",     "subject",        "mmapq",  "orders.host-1",   1 },
	{ "nats",     "stream",         "MMAPQ",  "ORDERS_1",        1 },
	{ "nats",     "create_stream",  "no",     "yes",             1 },
	{ "nats",     "replicas",       "1",      "3",               1 },
	{ "nats",     "storage",        "file",   "memory",          1 },
	{ "nats",     "duplicate_window", "120",  "600",             1 },
	{ "nats",     "ordered",        "yes",    "no",              1 },
	{ "nats",     "credentials",    "",       "/etc/mmapq/nats.creds", 1 },
	{ "nats",     "tls_ca",         "",       "/etc/mmapq/ca.pem", 1 },
	{ "nats",     "tls_cert",       "",       "/etc/mmapq/client.pem", 1 },
	{ "nats",     "tls_key",        "",       "/etc/mmapq/client.key", 1 },
	{ "nats",     "max_pending",    "4096",   "65536",           1 },
	{ "nats",     "connect_timeout", "5",     "300",             1 },
	{ "nats",     "ack_timeout",    "5",      "1",               1 },
	{ "nats",     "reconnect_max_wait", "10", "300",             1 },
	{ "log",      "level",          "info",   "debug",           0 },
	{ "log",      "stats_interval", "0",      "86400",           0 },
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* A file setting every key that has one to its non-default value. */
static const char *nondefault_ini(void)
{
	static char *buf;
	size_t size = 0, i;
	FILE *m;

	if (buf)
		return buf;
	m = open_memstream(&buf, &size);
	if (!m)
		tu_die("open_memstream");
	for (i = 0; i < NKEYS; i++) {
		if (i == 0 || strcmp(keys[i].section, keys[i - 1].section))
			fprintf(m, "[%s]\n", keys[i].section);
		if (keys[i].nondefault)
			fprintf(m, "%s = %s\n", keys[i].key, keys[i].nondefault);
	}
	fclose(m);
	return buf;
}

static void expect_defaults(const struct mmapq_config *c)
{
	EXPECT_STR(c->queue_path, "/var/lib/mmapq/queue");
	EXPECT_INT(c->size, 4 << 20);
	EXPECT_INT(c->max_record, 64 << 10);
	EXPECT_INT(c->format, MMAPQ_FORMAT_INT);
	EXPECT_INT(c->sync, MMAPQ_SYNC_NEVER);
	EXPECT_INT(c->mode, 0660);
	EXPECT_INT(c->spin_us, 0);
	EXPECT_STR(c->input, "stdin");
	EXPECT_STR(c->socket_path, "/run/mmapq/producer.sock");
	EXPECT_INT(c->generate_rate, 1000);
	EXPECT_INT(c->on_full, MMAPQ_ON_FULL_BLOCK);
	EXPECT_INT(c->client_timeout, 60);
	EXPECT_STR(c->output, "auto");
	EXPECT_STR(c->nats_servers, "nats://127.0.0.1:4222");
	EXPECT_STR(c->nats_subject, "mmapq");
	EXPECT_STR(c->nats_stream, "MMAPQ");
	EXPECT_INT(c->nats_create_stream, 0);
	EXPECT_INT(c->nats_replicas, 1);
	EXPECT_INT(c->nats_storage, MMAPQ_NATS_FILE);
	EXPECT_INT(c->nats_duplicate_window, 120);
	EXPECT_INT(c->nats_ordered, 1);
	EXPECT_STR(c->nats_credentials, "");
	EXPECT_STR(c->nats_tls_ca, "");
	EXPECT_STR(c->nats_tls_cert, "");
	EXPECT_STR(c->nats_tls_key, "");
	EXPECT_INT(c->nats_max_pending, 4096);
	EXPECT_INT(c->nats_connect_timeout, 5);
	EXPECT_INT(c->nats_ack_timeout, 5);
	EXPECT_INT(c->nats_reconnect_max_wait, 10);
	EXPECT_INT(c->log_level, MMAPQ_LOG_INFO);
	EXPECT_INT(c->stats_interval, 0);
}

/* A config unlike the defaults in every field, to see what load changes. */
static void fill_nondefault(struct mmapq_config *c)
{
	struct errs e;

	errs_init(&e);
	mmapq_config_defaults(c);
	EXPECT_INT(load_str("nondefault.ini", nondefault_ini(), c, &e), 0);
	errs_free(&e);
}

/* ---- tests ---- */

static void test_defaults(void)
{
	struct mmapq_config c;
	char buf[MMAPQ_CONFIG_STR_MAX];
	size_t i;

	memset(&c, 0xa5, sizeof(c));
	mmapq_config_defaults(&c);
	expect_defaults(&c);
	for (i = 0; i < NKEYS; i++) {
		EXPECT_INT(mmapq_config_format_value(&c, keys[i].section, keys[i].key,
		                                     buf, sizeof(buf)), 0);
		EXPECT_STR(buf, keys[i].def);
	}
}

/* The shipped file sets every key, once, to its default, with a comment
 * line above it, and nothing else: it cannot drift from the table. */
static int shipped_handler(void *user, const char *section, const char *name, const char *value)
{
	unsigned *seen = user;
	size_t i;

	for (i = 0; i < NKEYS; i++) {
		if (!strcmp(section, keys[i].section) && !strcmp(name, keys[i].key)) {
			seen[i]++;
			if (strcmp(value, keys[i].def))
				fprintf(stderr, "mmapq.ini: [%s] %s = %s, default is %s\n",
				        section, name, value, keys[i].def);
			return !strcmp(value, keys[i].def);
		}
	}
	fprintf(stderr, "mmapq.ini: unexpected key [%s] %s\n", section, name);
	return 0;
}

static void test_shipped_ini(void)
{
	char *path = tu_xasprintf("%s/config/mmapq.ini", tu_source_dir());
	struct mmapq_config c, d;
	unsigned seen[NKEYS] = { 0 };
	char *text, *line, *prev = NULL, *save = NULL;
	struct errs e;
	size_t i;

	errs_init(&e);
	memset(&c, 0x5a, sizeof(c));
	EXPECT_INT(mmapq_config_load(&c, path, on_error, &e), 0);
	EXPECT_STR(errs_text(&e), "");
	mmapq_config_defaults(&d);
	expect_defaults(&c);
	EXPECT_MEM(&c, &d, sizeof(c));
	EXPECT_INT(mmapq_config_diff(&c, &d, NULL, NULL), 0);

	EXPECT_INT(ini_parse(path, shipped_handler, seen), 0);
	for (i = 0; i < NKEYS; i++) {
		if (seen[i] != 1)
			fprintf(stderr, "mmapq.ini: [%s] %s set %u times\n",
			        keys[i].section, keys[i].key, seen[i]);
		EXPECT_INT(seen[i], 1);
	}

	text = read_file(path, NULL);
	EXPECT(text, "%s: %s", path, strerror(errno));
	EXPECT(strstr(text, "--check-config"), "%s does not mention --check-config", path);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (strchr(line, '=') && line[0] != ';' && line[0] != '#') {
			EXPECT(prev, "mmapq.ini: no comment above '%s'", line);
			if (prev[0] != ';')
				fprintf(stderr, "mmapq.ini: no comment above '%s'\n", line);
			EXPECT_INT(prev[0], ';');
		}
		prev = line;
	}
	free(text);
	errs_free(&e);
	free(path);
}

static void test_nondefault(void)
{
	struct mmapq_config c;
	char buf[MMAPQ_CONFIG_STR_MAX];
	struct errs e;
	size_t i;

	errs_init(&e);
	mmapq_config_defaults(&c);
	EXPECT_INT(load_str("nondefault.ini", nondefault_ini(), &c, &e), 0);
	EXPECT_STR(errs_text(&e), "");

	EXPECT_STR(c.queue_path, "/srv/mmapq test/q.dat");
	EXPECT_INT(c.size, UINT64_C(64) << 30);
	EXPECT_INT(c.max_record, 1000000);
	EXPECT_INT(c.format, MMAPQ_FORMAT_BINARY);
	EXPECT_INT(c.sync, MMAPQ_SYNC_ALWAYS);
	EXPECT_INT(c.mode, 0600);
	EXPECT_INT(c.spin_us, 10000);
	EXPECT_STR(c.input, "generate");
	EXPECT_STR(c.socket_path, "/tmp/p.sock");
	EXPECT_INT(c.generate_rate, 0);
	EXPECT_INT(c.on_full, MMAPQ_ON_FULL_DROP);
	EXPECT_INT(c.client_timeout, 0);
	EXPECT_STR(c.output, "file:/var/log/mmapq.out");
	EXPECT_STR(c.nats_servers, "tls://nats-1.example.com:4443, nats://[::1]:4222,10.0.0.3");
	EXPECT_STR(c.nats_subject, "orders.host-1");
	EXPECT_STR(c.nats_stream, "ORDERS_1");
	EXPECT_INT(c.nats_create_stream, 1);
	EXPECT_INT(c.nats_replicas, 3);
	EXPECT_INT(c.nats_storage, MMAPQ_NATS_MEMORY);
	EXPECT_INT(c.nats_duplicate_window, 600);
	EXPECT_INT(c.nats_ordered, 0);
	EXPECT_STR(c.nats_credentials, "/etc/mmapq/nats.creds");
	EXPECT_STR(c.nats_tls_ca, "/etc/mmapq/ca.pem");
	EXPECT_STR(c.nats_tls_cert, "/etc/mmapq/client.pem");
	EXPECT_STR(c.nats_tls_key, "/etc/mmapq/client.key");
	EXPECT_INT(c.nats_max_pending, 65536);
	EXPECT_INT(c.nats_connect_timeout, 300);
	EXPECT_INT(c.nats_ack_timeout, 1);
	EXPECT_INT(c.nats_reconnect_max_wait, 300);
	EXPECT_INT(c.log_level, MMAPQ_LOG_DEBUG);
	EXPECT_INT(c.stats_interval, 86400);

	for (i = 0; i < NKEYS; i++) {
		EXPECT_INT(mmapq_config_format_value(&c, keys[i].section, keys[i].key,
		                                     buf, sizeof(buf)), 0);
		EXPECT_STR(buf, keys[i].nondefault ? keys[i].nondefault : keys[i].def);
	}
	errs_free(&e);
}

/* The size of a field of struct mmapq_config, and where it is. */
#define FIELD(f) offsetof(struct mmapq_config, f), sizeof(((struct mmapq_config *)0)->f)

/* Other valid spellings and bounds. */
static void test_valid_values(void)
{
	static const struct {
		const char *text;
		size_t offset, width;
		uint64_t value;
	} cases[] = {
		/* the smallest ring, with the one max_record it takes */
		{ "[queue]\nsize = 64\nmax_record = 8\n", FIELD(size), 64 },
		{ "[queue]\nsize = 64\nmax_record = 8\n", FIELD(max_record), 8 },
		{ "[queue]\nsize = 4M\n", FIELD(size), UINT64_C(4) << 20 },
		{ "[queue]\nsize = 524288\n", FIELD(size), UINT64_C(512) << 10 },
		{ "[queue]\nsize = 0512K\n", FIELD(size), UINT64_C(512) << 10 },
		{ "[queue]\nsize = 1024K\n", FIELD(size), UINT64_C(1) << 20 },
		{ "[queue]\nsize = 1G ; a comment\n", FIELD(size), UINT64_C(1) << 30 },
		{ "[queue]\nsize = 64G\n", FIELD(size), UINT64_C(64) << 30 },
		{ "[queue]\nsize = 65536M\n", FIELD(size), UINT64_C(64) << 30 },
		{ "[queue]\nmax_record = 1000\n", FIELD(max_record), 1000 },
		{ "[queue]\nmax_record = 1K\n", FIELD(max_record), 1024 },
		/* the largest record a ring of 4M takes: its frame is 1M */
		{ "[queue]\nmax_record = 1048568\n", FIELD(max_record), 1048568 },
		{ "[queue]\nsize = 128M\nmax_record = 16M\n", FIELD(max_record), UINT64_C(16) << 20 },
		{ "[queue]\nsize = 1G\nmax_record = 64M\n", FIELD(max_record), UINT64_C(64) << 20 },
		{ "[queue]\nformat = binary\n", FIELD(format), MMAPQ_FORMAT_BINARY },
		{ "[queue]\nformat = line\n", FIELD(format), MMAPQ_FORMAT_LINE },
		{ "[queue]\nmode = 777\n", FIELD(mode), 0777 },
		{ "[queue]\nmode = 00600\n", FIELD(mode), 0600 },
		{ "[queue]\nmode = 0640 ; comment\n", FIELD(mode), 0640 },
		{ "[queue]\nsync = batch\n", FIELD(sync), MMAPQ_SYNC_BATCH },
		{ "[log]\nlevel = error\n", FIELD(log_level), MMAPQ_LOG_ERR },
		{ "[log]\nlevel = warning\n", FIELD(log_level), MMAPQ_LOG_WARNING },
		{ "[log]\nlevel = notice\n", FIELD(log_level), MMAPQ_LOG_NOTICE },
		{ "[log]\nlevel=debug\n", FIELD(log_level), MMAPQ_LOG_DEBUG },
		{ "[log]\nstats_interval = 1\n", FIELD(stats_interval), 1 },
		{ "[log] ; a comment after the header\nstats_interval = 2\n",
		  FIELD(stats_interval), 2 },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mmapq_config c;
		struct errs e;
		uint64_t v;

		errs_init(&e);
		if (load_str("valid.ini", cases[i].text, &c, &e) != 0)
			fprintf(stderr, "case %zu: %s", i, errs_text(&e));
		EXPECT_STR(errs_text(&e), "");
		if (cases[i].width == sizeof(uint64_t)) {
			memcpy(&v, (char *)&c + cases[i].offset, sizeof(v));
		} else {
			uint32_t v32;

			memcpy(&v32, (char *)&c + cases[i].offset, sizeof(v32));
			v = v32;
		}
		EXPECT_INT(v, cases[i].value);
		errs_free(&e);
	}
}

/* What the messages about a number of bytes say. */
#define NOT_BYTES "is not a number of bytes (digits, and K, M or G after them if you like)"
#define SIZE_ALLOWED \
	"(allowed: a power of two from 64 to 64G bytes, K = 1024, M = 1024K, G = 1024M)"
#define MAX_RECORD_ALLOWED "(allowed: 8 to 64M bytes, K = 1024, M = 1024K, G = 1024M)"

/* One bad value per file: the exact message for each. */
static void test_invalid_values(void)
{
	static const struct {
		const char *line, *msg;
	} cases[] = {
		{ "size = +4M", "[queue] size: '+4M' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = -4M", "[queue] size: '-4M' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 0x100", "[queue] size: '0x100' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4m", "[queue] size: '4m' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4k", "[queue] size: '4k' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4MB", "[queue] size: '4MB' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4Mi", "[queue] size: '4Mi' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4 M", "[queue] size: '4 M' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = M", "[queue] size: 'M' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4.5M", "[queue] size: '4.5M' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 1e6", "[queue] size: '1e6' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 4M4", "[queue] size: '4M4' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = K4", "[queue] size: 'K4' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 0", "[queue] size: '0' is out of range " SIZE_ALLOWED },
		{ "size = 32", "[queue] size: '32' is out of range " SIZE_ALLOWED },
		{ "size = 63", "[queue] size: '63' is out of range " SIZE_ALLOWED },
		{ "size = 128G", "[queue] size: '128G' is out of range " SIZE_ALLOWED },
		{ "size = 65G", "[queue] size: '65G' is out of range " SIZE_ALLOWED },
		{ "size = 16777215G", "[queue] size: '16777215G' is out of range " SIZE_ALLOWED },
		{ "size = 99999999999999999999999",
		  "[queue] size: '99999999999999999999999' is out of range " SIZE_ALLOWED },
		{ "size = 17179869184G",
		  "[queue] size: '17179869184G' is out of range " SIZE_ALLOWED },
		{ "size = 99999999999999999999999x",
		  "[queue] size: '99999999999999999999999x' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
		  "[queue] size: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa' " NOT_BYTES " " SIZE_ALLOWED },
		{ "size = 3M", "[queue] size: '3M' is not a power of two " SIZE_ALLOWED },
		{ "size = 96", "[queue] size: '96' is not a power of two " SIZE_ALLOWED },
		{ "size = 1000K", "[queue] size: '1000K' is not a power of two " SIZE_ALLOWED },
		{ "size = 65535", "[queue] size: '65535' is not a power of two " SIZE_ALLOWED },
		{ "max_record = 7", "[queue] max_record: '7' is out of range " MAX_RECORD_ALLOWED },
		{ "max_record = 0K",
		  "[queue] max_record: '0K' is out of range " MAX_RECORD_ALLOWED },
		{ "max_record = 67108865",
		  "[queue] max_record: '67108865' is out of range " MAX_RECORD_ALLOWED },
		{ "max_record = 65M",
		  "[queue] max_record: '65M' is out of range " MAX_RECORD_ALLOWED },
		{ "max_record = 4G",
		  "[queue] max_record: '4G' is out of range " MAX_RECORD_ALLOWED },
		{ "max_record = 4294967296",
		  "[queue] max_record: '4294967296' is out of range " MAX_RECORD_ALLOWED },
		{ "max_record = 64.0K",
		  "[queue] max_record: '64.0K' " NOT_BYTES " " MAX_RECORD_ALLOWED },
		{ "max_record = 64kB",
		  "[queue] max_record: '64kB' " NOT_BYTES " " MAX_RECORD_ALLOWED },
		{ "size =", "[queue] size: empty value " SIZE_ALLOWED },
		{ "max_record = ; just a comment",
		  "[queue] max_record: empty value " MAX_RECORD_ALLOWED },
		/* keys an older mmapq read: what replaced them */
		{ "capacity = 65536",
		  "[queue] capacity is no longer a key: the ring is sized in bytes by"
		  " size (a power of two, such as 4M), and each record takes its real length in it"
		  " (mmapq.ini(5))" },
		{ "record_size = 64",
		  "[queue] record_size is no longer a key: max_record bounds the length"
		  " of one record (bytes, such as 64K) (mmapq.ini(5))" },
		{ "record_size =",
		  "[queue] record_size is no longer a key: max_record bounds the length"
		  " of one record (bytes, such as 64K) (mmapq.ini(5))" },
		{ "format = INT",
		  "[queue] format: 'INT' is not valid (allowed: int, line, binary)" },
		{ "format = \"int\"", "[queue] format: '\"int\"' is not valid (allowed: int, line,"
		  " binary)" },
		{ "mode = 0999", "[queue] mode: '0999' is not an octal number "
		  "(allowed: an octal mode from 0600 to 0777 that includes 0600)" },
		{ "mode = 0o660", "[queue] mode: '0o660' is not an octal number "
		  "(allowed: an octal mode from 0600 to 0777 that includes 0600)" },
		{ "mode = 01777", "[queue] mode: '01777' is out of range "
		  "(allowed: an octal mode from 0600 to 0777 that includes 0600)" },
		{ "mode = 0400", "[queue] mode: '0400' lacks owner read and write "
		  "(allowed: an octal mode from 0600 to 0777 that includes 0600)" },
		{ "mode = 0066", "[queue] mode: '0066' lacks owner read and write "
		  "(allowed: an octal mode from 0600 to 0777 that includes 0600)" },
		{ "path = ;", "[queue] path: empty value (allowed: a path of 1 to 4095 bytes)" },
		{ "sync = it's\\", "[queue] sync: 'it's\\x5c' is not valid "
		  "(allowed: never, batch, always, interval)" },
		{ "sync = a\x01\x7f" "b", "[queue] sync: 'a\\x01\\x7fb' is not valid "
		  "(allowed: never, batch, always, interval)" },
		{ "sync = 0123456789012345678901234567890123456789012345678901234567890123456789",
		  "[queue] sync: '0123456789012345678901234567890123456789012345678901234567890123...'"
		  " is not valid (allowed: never, batch, always, interval)" },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = tu_xasprintf("[queue]\n%s\n", cases[i].line);
		char *want = tu_xasprintf("value.ini:2: %s\n", cases[i].msg);
		struct mmapq_config c;
		struct errs e;

		errs_init(&e);
		EXPECT_INT(load_str("value.ini", text, &c, &e), -EINVAL);
		EXPECT_STR(errs_text(&e), want);
		errs_free(&e);
		free(want);
		free(text);
	}
}

/* [nats]: server lists, subjects and stream names, good and bad, with the
 * exact message; a file key set to nothing; the TLS pair. */
static void test_nats_values(void)
{
	static const struct {
		const char *line, *msg; /* msg NULL: valid */
	} cases[] = {
		{ "servers = nats://a:1", NULL },
		{ "servers = a, b:4222 ,tls://c.d-e_f:65535,[fe80::1]:1,nats://[::1]", NULL },
		{ "servers = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", NULL },
		{ "servers = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
		  "'1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17' names too many servers" },
		{ "servers = a,,b", "'a,,b' has an empty entry" },
		{ "servers = a,", "'a,' has an empty entry" },
		{ "servers = http://a:1", "'http://a:1' has a scheme other than nats:// or tls://" },
		{ "servers = nats://u:pw@a:1",
		  "'nats://u:pw@a:1' has a user or password in it (use [nats] credentials)" },
		{ "servers = nats://:4222", "'nats://:4222' has no host" },
		{ "servers = a b", "'a b' has a bad host name" },
		{ "servers = a:0", "'a:0' has a port outside 1..65535" },
		{ "servers = a:65536", "'a:65536' has a port outside 1..65535" },
		{ "servers = a:", "'a:' has a bad port" },
		{ "servers = a:42x", "'a:42x' has a bad port" },
		{ "servers = [::1", "'[::1' has a bad [IPv6] address" },
		{ "servers = [::g]:1", "'[::g]:1' has a bad [IPv6] address" },
		{ "servers = [::1]x", "'[::1]x' has something after the ]" },
		{ "subject = a.b-c_d.$e", NULL },
		{ "subject = a..b", "'a..b' has an empty token (\"..\", or a dot at an end)" },
		{ "subject = .a", "'.a' has an empty token (\"..\", or a dot at an end)" },
		{ "subject = a.", "'a.' has an empty token (\"..\", or a dot at an end)" },
		{ "subject = a.*", "'a.*' has a wildcard (records are published to one subject)" },
		{ "subject = a.>", "'a.>' has a wildcard (records are published to one subject)" },
		{ "subject = a b", "'a b' has a blank or a byte outside visible ASCII" },
		{ "stream = ORDERS-2_x", NULL },
		{ "stream = A.B", "'A.B' has a character other than a letter, a digit, '_' or '-'" },
		{ "stream = 01234567890123456789012345678901234567890123456789012345678901234",
		  "'0123456789012345678901234567890123456789012345678901234567890123...' is too long" },
		{ "credentials =", NULL },
		{ "credentials = ; none", NULL },
		{ "tls_ca = /etc/ssl/certs/ca-certificates.crt", NULL },
		{ "replicas = 6", "'6' is out of range" },
		{ "max_pending = 0", "'0' is out of range" },
		{ "ordered = true", "'true' is not valid" },
		{ "storage = disk", "'disk' is not valid" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = tu_xasprintf("[nats]\n%s\n", cases[i].line);
		char key[32];
		struct mmapq_config c;
		struct errs e;
		const char *got;

		sscanf(cases[i].line, "%31s", key);
		errs_init(&e);
		EXPECT_INT(load_str("nats.ini", text, &c, &e), cases[i].msg ? -EINVAL : 0);
		got = errs_text(&e);
		if (cases[i].msg) {
			char *want = tu_xasprintf("nats.ini:2: [nats] %s: %s (allowed: ", key, cases[i].msg);
			if (strncmp(got, want, strlen(want)))
				fprintf(stderr, "case '%s': got %s", cases[i].line, got);
			EXPECT(!strncmp(got, want, strlen(want)), "case '%s': want '%s...'", cases[i].line, want);
			free(want);
		} else {
			EXPECT_STR(got, "");
		}
		errs_free(&e);
		free(text);
	}

	/* a client certificate needs its key, and the other way round */
	static const struct {
		const char *text, *want;
	} tls[] = {
		{ "[nats]\ntls_cert = /c.pem\n", "tls.ini:2: [nats] tls_cert is set but tls_key is not:"
		  " a client certificate needs its key (set both, or neither)\n" },
		{ "[nats]\n; x\ntls_key = /k.pem\n", "tls.ini:3: [nats] tls_key is set but tls_cert is"
		  " not: a client certificate needs its key (set both, or neither)\n" },
		{ "[nats]\ntls_key = /k.pem\ntls_cert = /c.pem\n", "" },
	};
	for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++) {
		struct mmapq_config c;
		struct errs e;

		errs_init(&e);
		EXPECT_INT(load_str("tls.ini", tls[i].text, &c, &e), tls[i].want[0] ? -EINVAL : 0);
		EXPECT_STR(errs_text(&e), tls[i].want);
		errs_free(&e);
	}
}

/* The message of a max_record too large for size: what each is and where
 * it comes from, the largest max_record the size takes, the smallest size
 * that takes the max_record. */
#define TOO_LARGE(mr, mr_at, size, size_at, limit, fit)                                    \
	"[queue] max_record " mr " (" mr_at ") does not fit a ring of size " size " (" size_at \
	"): a record's frame (8 bytes and the record rounded up to 8) may take at most a"      \
	" quarter of the ring, so size " size " takes a max_record of at most " limit ";"      \
	" raise size to " fit ", or lower max_record\n"

/* Keys valid one by one, wrong together: a max_record whose frame is more
 * than a quarter of the ring; blamed on the key set last, with both places
 * named (a default as such); the bounds exactly; a value refused on its
 * own is not judged again. */
static void test_geometry_limit(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "[queue]\nsize = 4M\n; x\nmax_record = 2M\n",
		  "geo.ini:4: " TOO_LARGE("2M", "line 4", "4M", "line 2", "1048568", "16M") },
		{ "[queue]\nmax_record = 2M\nformat = line\nsize = 4M\n",
		  "geo.ini:4: " TOO_LARGE("2M", "line 2", "4M", "line 4", "1048568", "16M") },
		/* a default on the other side */
		{ "[queue]\nmax_record = 1M\n",
		  "geo.ini:2: " TOO_LARGE("1M", "line 2", "4M", "default", "1048568", "8M") },
		{ "[queue]\nsize = 256K\n",
		  "geo.ini:2: " TOO_LARGE("64K", "default", "256K", "line 2", "65528", "512K") },
		{ "[queue]\nsize = 512K\n", "" },
		/* the frame of the largest record is exactly a quarter */
		{ "[queue]\nsize = 4M\nmax_record = 1048568\n", "" },
		/* one byte more rounds up to 8 more */
		{ "[queue]\nsize = 4M\nmax_record = 1048569\n",
		  "geo.ini:3: " TOO_LARGE("1048569", "line 3", "4M", "line 2", "1048568", "8M") },
		/* the smallest ring and record */
		{ "[queue]\nsize = 64\nmax_record = 8\n", "" },
		{ "[queue]\nsize = 64\nmax_record = 9\n",
		  "geo.ini:3: " TOO_LARGE("9", "line 3", "64", "line 2", "8", "128") },
		/* the largest record: its ring */
		{ "[queue]\nmax_record = 64M\nsize = 64G\n", "" },
		{ "[queue]\nmax_record = 64M\n",
		  "geo.ini:2: " TOO_LARGE("64M", "line 2", "4M", "default", "1048568", "512M") },
		{ "[queue]\nmax_record = 64M\nsize = 256M\n",
		  "geo.ini:3: " TOO_LARGE("64M", "line 2", "256M", "line 3", "67108856", "512M") },
		/* whatever the format: every record is a frame */
		{ "[queue]\nformat = int\nsize = 64\n",
		  "geo.ini:3: " TOO_LARGE("64K", "default", "64", "line 3", "8", "512K") },
		/* a value refused on its own: only that error */
		{ "[queue]\nsize = 3M\nmax_record = 2M\n",
		  "geo.ini:2: [queue] size: '3M' is not a power of two " SIZE_ALLOWED "\n" },
		{ "[queue]\nsize = 64K\nmax_record = 64k\n",
		  "geo.ini:3: [queue] max_record: '64k' " NOT_BYTES " " MAX_RECORD_ALLOWED "\n" },
		{ "[queue]\nsize = 64K\nmax_record =\n",
		  "geo.ini:3: [queue] max_record: empty value " MAX_RECORD_ALLOWED "\n" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mmapq_config c;
		struct errs e;

		errs_init(&e);
		EXPECT_INT(load_str("geo.ini", cases[i].text, &c, &e), cases[i].want[0] ? -EINVAL : 0);
		if (strcmp(errs_text(&e), cases[i].want))
			fprintf(stderr, "case %zu: %s", i, cases[i].text);
		EXPECT_STR(errs_text(&e), cases[i].want);
		errs_free(&e);
	}
}

/* tests/config/bad-NAME.ini must produce exactly bad-NAME.expected. */
static void test_golden(void)
{
	char *pattern = tu_xasprintf("%s/tests/config/bad-*.ini", tu_source_dir());
	bool update = getenv("MMAPQ_UPDATE_GOLDEN") != NULL;
	glob_t g;
	size_t i;

	EXPECT_INT(glob(pattern, 0, NULL, &g), 0);
	EXPECT(g.gl_pathc >= 5, "%s: %zu files, want 5 or more", pattern, g.gl_pathc);
	for (i = 0; i < g.gl_pathc; i++) {
		const char *ini = g.gl_pathv[i];
		char *expected_path = tu_xasprintf("%.*s.expected", (int)(strlen(ini) - 4), ini);
		struct mmapq_config c, before;
		char *expected;
		struct errs e;
		int r;

		errs_init(&e);
		fill_nondefault(&c);
		before = c;
		r = mmapq_config_load(&c, ini, on_error, &e);
		if (update) {
			write_file(expected_path, errs_text(&e), strlen(errs_text(&e)));
		} else {
			expected = read_file(expected_path, NULL);
			if (!expected)
				fprintf(stderr, "%s: missing\n", expected_path);
			EXPECT(expected, "%s: %s", expected_path, strerror(errno));
			if (strcmp(errs_text(&e), expected))
				fprintf(stderr, "%s: expected:\n%s\ngot:\n%s\n", ini, expected, errs_text(&e));
			EXPECT_STR(errs_text(&e), expected);
			free(expected);
		}
		EXPECT_INT(r, -EINVAL);
		EXPECT(e.count > 0, "%s: no error reported", ini);
		/* Nothing applied, not even the good lines. */
		EXPECT_MEM(&c, &before, sizeof(c));
		errs_free(&e);
		free(expected_path);
	}
	globfree(&g);
	free(pattern);
}

/* inih would split these lines; each is reported once and parsing goes on
 * with the next line, which the duplicate and the bad value prove. */
static void test_long_lines(void)
{
	size_t big = 1024 * 1024, n;
	char *text, *p, *want;
	struct mmapq_config c;
	struct errs e;

	text = malloc(2 * big + 1024);
	if (!text)
		tu_die("malloc");
	p = text;
	p += sprintf(p, "[queue]\npath = /");
	memset(p, 'x', 300);
	p += 300;
	p += sprintf(p, "\nsize = 1M\n; ");
	memset(p, 'c', big);
	p += big;
	p += sprintf(p, "\nsize = 2M\npath = ");
	memset(p, 'p', big);
	p += big;
	p += sprintf(p, "\r\nsync = bogus\n");

	errs_init(&e);
	mmapq_config_defaults(&c);
	EXPECT_INT(load_data("long.ini", text, (size_t)(p - text), &c, &e), -EINVAL);
	want = tu_xasprintf("long.ini:2: line too long (308 bytes, at most 198)\n"
	                 "long.ini:4: line too long (%zu bytes, at most 198)\n"
	                 "long.ini:5: duplicate key 'size' in [queue] (first set on line 3)\n"
	                 "long.ini:6: line too long (%zu bytes, at most 198)\n"
	                 "long.ini:7: [queue] sync: 'bogus' is not valid "
	                 "(allowed: never, batch, always, interval)\n", big + 2, big + 7);
	EXPECT_STR(errs_text(&e), want);
	free(want);
	errs_free(&e);

	/* The longest line that fits, and one byte more; the limit is on the
	 * line without its end, so CRLF does not change it. */
	p = text;
	p += sprintf(p, "[queue]\r\npath = /");
	n = 198 - strlen("path = /");
	memset(p, 'y', n);
	p += n;
	p += sprintf(p, "\r\n");
	errs_init(&e);
	EXPECT_INT(load_data("fits.ini", text, (size_t)(p - text), &c, &e), 0);
	EXPECT_STR(errs_text(&e), "");
	EXPECT_INT(strlen(c.queue_path), 198 - strlen("path = "));
	EXPECT_INT(c.queue_path[n], 'y');
	errs_free(&e);

	p -= 2;
	p += sprintf(p, "z\n");
	errs_init(&e);
	EXPECT_INT(load_data("199.ini", text, (size_t)(p - text), &c, &e), -EINVAL);
	EXPECT_STR(errs_text(&e), "199.ini:2: line too long (199 bytes, at most 198)\n");
	errs_free(&e);

	/* A long last line without a line end. */
	errs_init(&e);
	memset(text, 'q', 250);
	EXPECT_INT(load_data("last.ini", text, 250, &c, &e), -EINVAL);
	EXPECT_STR(errs_text(&e), "last.ini:1: line too long (250 bytes, at most 198)\n");
	errs_free(&e);
	free(text);
}

static void test_nul_bytes(void)
{
	static const char text[] = "[queue]\nsize = 1M\0 16\nsync = batch\n\0\n"
	                           "max_record = 1\n[log]\nlevel\0= debug\n";
	struct mmapq_config c;
	struct errs e;

	errs_init(&e);
	EXPECT_INT(load_data("nul.ini", text, sizeof(text) - 1, &c, &e), -EINVAL);
	EXPECT_STR(errs_text(&e),
	           "nul.ini:2: NUL byte at column 10\n"
	           "nul.ini:4: NUL byte at column 1\n"
	           "nul.ini:5: [queue] max_record: '1' is out of range " MAX_RECORD_ALLOWED "\n"
	           "nul.ini:7: NUL byte at column 6\n");
	errs_free(&e);
}

static void test_directory(void)
{
	struct mmapq_config c, before;
	struct errs e;
	int r;

	errs_init(&e);
	fill_nondefault(&c);
	before = c;
	r = mmapq_config_load(&c, tmpdir, on_error, &e);
	EXPECT_INT(r, -EISDIR);
	EXPECT_INT(e.count, 1);
	EXPECT(strstr(errs_text(&e), ":0: is a directory\n"), "errors: '%s'", errs_text(&e));
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&e);

	errs_init(&e);
	r = mmapq_config_load(&c, "/dev/null", on_error, &e);
	EXPECT_INT(r, -EINVAL);
	EXPECT_STR(errs_text(&e), "null:0: not a regular file\n");
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&e);

	/* A regular file that fails to read: reading offset 0 of our own
	 * address space is EIO. */
	errs_init(&e);
	r = mmapq_config_load(&c, "/proc/self/mem", on_error, &e);
	EXPECT_INT(r, -EIO);
	EXPECT_STR(errs_text(&e), "mem:0: read error: Input/output error\n");
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&e);
}

static void test_missing(void)
{
	char *path = tu_xasprintf("%s/no-such-file.ini", tmpdir);
	struct mmapq_config c, before;
	struct errs e;

	errs_init(&e);
	fill_nondefault(&c);
	before = c;
	EXPECT_INT(mmapq_config_load(&c, path, on_error, &e), -ENOENT);
	EXPECT_INT(e.count, 0);
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&e);
	free(path);

	/* A path through a regular file: reported, with its errno. */
	path = tu_xasprintf("%s/plain.ini", tmpdir);
	write_file(path, "", 0);
	free(path);
	path = tu_xasprintf("%s/plain.ini/x", tmpdir);
	errs_init(&e);
	EXPECT_INT(mmapq_config_load(&c, path, on_error, &e), -ENOTDIR);
	EXPECT_STR(errs_text(&e), "x:0: Not a directory\n");
	errs_free(&e);
	free(path);
}

/* Whatever was in the struct, load starts from the defaults. */
static void test_empty_and_partial(void)
{
	struct mmapq_config c, d;
	struct errs e;

	mmapq_config_defaults(&d);

	errs_init(&e);
	fill_nondefault(&c);
	EXPECT_INT(load_str("empty.ini", "", &c, &e), 0);
	EXPECT_MEM(&c, &d, sizeof(c));
	errs_free(&e);

	errs_init(&e);
	fill_nondefault(&c);
	EXPECT_INT(load_str("comments.ini", "; only\n# comments\n\n   \n\t; and blanks\n"
	                    "[producer]\n[log]\n", &c, &e), 0);
	EXPECT_MEM(&c, &d, sizeof(c));
	errs_free(&e);

	errs_init(&e);
	fill_nondefault(&c);
	EXPECT_INT(load_str("partial.ini", "[queue]\nsize = 1M\n", &c, &e), 0);
	EXPECT_STR(errs_text(&e), "");
	EXPECT_INT(c.size, 1 << 20);
	d.size = 1 << 20;
	EXPECT_MEM(&c, &d, sizeof(c));
	errs_free(&e);
}

static void test_bom_crlf(void)
{
	struct mmapq_config c;
	struct errs e;

	errs_init(&e);
	EXPECT_INT(load_str("bom.ini", "\xef\xbb\xbf[queue]\nsize = 1M\n", &c, &e), 0);
	EXPECT_STR(errs_text(&e), "");
	EXPECT_INT(c.size, 1 << 20);
	errs_free(&e);

	errs_init(&e);
	EXPECT_INT(load_str("bomkey.ini", "\xef\xbb\xbf" "size = 1M\n", &c, &e), -EINVAL);
	EXPECT_STR(errs_text(&e),
	           "bomkey.ini:1: key 'size' outside any section (it belongs in [queue])\n");
	errs_free(&e);

	/* Two marks: inih would strip the second one and parse another line
	 * than the one checked (found by fuzz_config). */
	errs_init(&e);
	EXPECT_INT(load_str("bombom.ini", "\xef\xbb\xbf\xef\xbb\xbf[queue]x=1\n", &c, &e),
	           -EINVAL);
	EXPECT_STR(errs_text(&e),
	           "bombom.ini:1: a second byte order mark at the start of the file\n");
	errs_free(&e);

	/* Only at the start of the file. */
	errs_init(&e);
	EXPECT_INT(load_str("bom2.ini", "[queue]\n\xef\xbb\xbf" "size = 1M\n", &c, &e),
	           -EINVAL);
	EXPECT_STR(errs_text(&e), "bom2.ini:2: unknown key '\xef\xbb\xbf" "size' in [queue] (known"
	           " keys: path, size, max_record, format, sync, sync_interval, mode, spin_us, max_consumers,"
	           " max_producers)\n");
	errs_free(&e);

	errs_init(&e);
	EXPECT_INT(load_str("crlf.ini", "\xef\xbb\xbf[queue]\r\nsize = 1M\r\n"
	                    "path = /q \r\n\r\n[log]\r\nlevel = debug\r\n", &c, &e), 0);
	EXPECT_STR(errs_text(&e), "");
	EXPECT_INT(c.size, 1 << 20);
	EXPECT_STR(c.queue_path, "/q");
	EXPECT_INT(c.log_level, MMAPQ_LOG_DEBUG);
	errs_free(&e);

	/* No '\r' in the message. */
	errs_init(&e);
	EXPECT_INT(load_str("crlf-bad.ini", "[queue]\r\nsync = bogus\r\n[x]\r\n", &c, &e),
	           -EINVAL);
	EXPECT_STR(errs_text(&e),
	           "crlf-bad.ini:2: [queue] sync: 'bogus' is not valid "
	           "(allowed: never, batch, always, interval)\n"
	           "crlf-bad.ini:3: unknown section [x] "
	           "(known sections: queue, producer, consumer, nats, log)\n");
	errs_free(&e);
}

static void test_null_callback(void)
{
	char *path = tu_xasprintf("%s/tests/config/bad-many.ini", tu_source_dir());
	struct mmapq_config c, before;

	mmapq_config_defaults(&c);
	before = c;
	EXPECT_INT(mmapq_config_load(&c, path, NULL, NULL), -EINVAL);
	EXPECT_INT(mmapq_config_load(&c, tmpdir, NULL, NULL), -EISDIR);
	EXPECT_MEM(&c, &before, sizeof(c));
	free(path);
}

/* ---- drop-ins: F, then F.d/NAME.ini in byte order ---- */

static char *put(const char *dir, const char *name, const char *text)
{
	char *path = tu_path(dir, name);

	write_file(path, text, strlen(text));
	return path;
}

/* A directory of its own per test (removed afterwards, whatever it holds)
 * with a configuration file ini (text NULL: none) and its drop-in
 * directory d = ini.d. */
struct tree {
	char *dir, *ini, *d;
};

static struct tree tree_new(const char *name, const char *text)
{
	struct tree t;

	t.dir = tu_mkdtemp("config-dropins");
	t.ini = text ? put(t.dir, name, text) : tu_path(t.dir, name);
	t.d = tu_xasprintf("%s.d", t.ini);
	if (mkdir(t.d, 0755) < 0)
		tu_die("mkdir");
	return t;
}

static void tree_free(struct tree *t)
{
	tu_rmdir_r(t->dir); /* t->dir is the harness's (tu_mkdtemp): not freed */
	free(t->d);
	free(t->ini);
}

/* on_file: the base names of the files read, in order, space-separated. */
struct files {
	char list[1024];
};

static void on_file(void *ctx, const char *file)
{
	struct files *f = ctx;
	const char *base = strrchr(file, '/');
	size_t off = strlen(f->list);

	snprintf(f->list + off, sizeof(f->list) - off, "%s%s", off ? " " : "", base ? base + 1 : file);
}

/* Both callbacks share one context. */
struct reader {
	struct errs e;
	struct files f;
};

static void reader_error(void *ctx, const char *file, unsigned line, const char *msg)
{
	on_error(&((struct reader *)ctx)->e, file, line, msg);
}

static void reader_file(void *ctx, const char *file)
{
	on_file(&((struct reader *)ctx)->f, file);
}

static int read_cfg(struct mmapq_config *c, const char *path, const struct mmapq_config *base,
                    bool missing_ok, struct reader *rd)
{
	const struct mmapq_config_read_opts o = {
		.base = base, .missing_ok = missing_ok,
		.on_error = reader_error, .on_file = reader_file, .ctx = rd,
	};

	memset(&rd->f, 0, sizeof(rd->f));
	errs_init(&rd->e);
	return mmapq_config_read(c, path, &o);
}

/* Lexical (byte) order, not numeric: "9-" comes after "20-"; each later
 * file overrides what an earlier one set, keys set once stay. */
static void test_dropins_order_override(void)
{
	struct tree t = tree_new("mmapq.ini", "[queue]\nsize = 1M\nsync = batch\n[log]\nlevel = debug\n");
	const char *d = t.d, *ini = t.ini;
	struct mmapq_config c, want;
	struct reader rd;

	free(put(d, "10-a.ini", "[queue]\nsize = 2M\n"));
	free(put(d, "20-b.ini", "[queue]\nsize = 4M\n[producer]\non_full = drop\n"));
	free(put(d, "9-c.ini", "[queue]\nsize = 8M\n"));
	free(put(d, "05-d.ini", "[queue]\nsize = 16M\nsync = always\n"));

	memset(&c, 0x5a, sizeof(c));
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), 0);
	EXPECT_STR(errs_text(&rd.e), "");
	EXPECT_STR(rd.f.list, "mmapq.ini 05-d.ini 10-a.ini 20-b.ini 9-c.ini");
	mmapq_config_defaults(&want);
	want.size = 8 << 20;
	want.sync = MMAPQ_SYNC_ALWAYS;
	want.on_full = MMAPQ_ON_FULL_DROP;
	want.log_level = MMAPQ_LOG_DEBUG;
	EXPECT_MEM(&c, &want, sizeof(c));
	errs_free(&rd.e);

	/* mmapq_config_load reads them too */
	errs_init(&rd.e);
	memset(&c, 0x5a, sizeof(c));
	EXPECT_INT(mmapq_config_load(&c, ini, on_error, &rd.e), 0);
	EXPECT_MEM(&c, &want, sizeof(c));
	errs_free(&rd.e);
	tree_free(&t);
}

/* [consumer:NAME]: for the consumer NAME its keys override [consumer]'s,
 * whatever the order of lines and files; for any other consumer (or none)
 * they are only checked; errors name FILE:LINE; a key twice in one
 * [consumer:NAME] of a file is an error, once per section is not. */
static void test_consumer_sections(void)
{
	struct tree t = tree_new("mmapq.ini",
	                         "[consumer:audit]\noutput = file:/var/lib/mmapq/audit\nstart = newest\n"
	                         "[consumer]\noutput = null\n"
	                         "[consumer:default]\noutput = stdout\n");
	const char *d = t.d, *ini = t.ini;
	struct mmapq_config_read_opts o = {.on_error = reader_error, .on_file = reader_file};
	struct mmapq_config c;
	struct reader rd;

	/* a drop-in after it sets [consumer] output again: audit keeps its own */
	free(put(d, "50-out.ini", "[consumer]\noutput = journal\n"));
	o.ctx = &rd;
	for (int i = 0; i < 4; i++) {
		static const char *const who[] = {"audit", "default", "other", NULL};
		static const char *const want_out[] = {"file:/var/lib/mmapq/audit", "stdout", "journal",
		                                      "journal"};
		memset(&rd.f, 0, sizeof(rd.f));
		errs_init(&rd.e);
		o.consumer = who[i];
		EXPECT_INT(mmapq_config_read(&c, ini, &o), 0);
		EXPECT_STR(errs_text(&rd.e), "");
		EXPECT_STR(c.output, want_out[i]);
		EXPECT_INT(c.start, i == 0 ? MMAPQ_START_NEWEST : MMAPQ_START_OLDEST);
		EXPECT_STR(c.consumer, who[i] ? who[i] : "");
		errs_free(&rd.e);
	}
	/* errors, FILE:LINE, whoever reads it */
	free(put(d, "60-bad.ini", "[consumer:a/b]\noutput = null\n"
	                          "[consumer:x]\noutput = nowhere\nstart = oldest\nstart = newest\n"
	                          "[consumer:x]\nsize = 2M\n"
	                          "[consumer:]\n"
	                          "[consumer:-x]\noutput = null\n"));
	memset(&rd.f, 0, sizeof(rd.f));
	errs_init(&rd.e);
	o.consumer = "audit";
	EXPECT_INT(mmapq_config_read(&c, ini, &o), -EINVAL);
	EXPECT_STR(errs_text(&rd.e),
	           "60-bad.ini:1: [consumer:a/b]: 'a/b' is not a consumer name (1 to 63 letters,"
	           " digits and '_.@-', not starting with '-')\n"
	           "60-bad.ini:4: [consumer:x] output: 'nowhere' is not valid (allowed: auto, journal,"
	           " stdout, null, file:PATH, nats)\n"
	           "60-bad.ini:6: duplicate key 'start' in [consumer:x] (first set on line 5)\n"
	           "60-bad.ini:8: unknown key 'size' in [consumer:x] (known keys: output, start,"
	           " journal_identifier, journal_namespace, seq_prefix, on_full, inactive_timeout)\n"
	           "60-bad.ini:9: [consumer:]: '' is not a consumer name (1 to 63 letters, digits"
	           " and '_.@-', not starting with '-')\n"
	           /* a command line would take it for an option */
	           "60-bad.ini:10: [consumer:-x]: '-x' is not a consumer name (1 to 63 letters,"
	           " digits and '_.@-', not starting with '-')\n");
	errs_free(&rd.e);
	/* the consumer whose configuration is read: a name it may take */
	memset(&rd.f, 0, sizeof(rd.f));
	errs_init(&rd.e);
	o.consumer = "-x";
	EXPECT_INT(mmapq_config_read(&c, ini, &o), -EINVAL);
	EXPECT(strstr(errs_text(&rd.e), "not a consumer name"), "errors: '%s'", errs_text(&rd.e));
	errs_free(&rd.e);
	tree_free(&t);
}

/* Only NAME.ini counts: editor backups, package leftovers, other endings
 * and hidden files are ignored, whatever they hold (as systemd ignores
 * what is not NAME.conf in its drop-in directories). */
static void test_dropins_other_names_ignored(void)
{
	static const char *const ignored[] = {
		"50-x.ini~", "50-x.ini.dpkg-old", "50-x.ini.bak", "50-x.conf", "README", ".50-x.ini",
		".ini", "ini", "50-x.INI",
	};
	struct tree t = tree_new("q.ini", "[queue]\nsize = 1M\n");
	const char *d = t.d, *ini = t.ini;
	struct mmapq_config c, want;
	struct reader rd;

	for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
		free(put(d, ignored[i], "this is not a key value line\n[queue]\nsize = 3\n"));
	free(put(d, "60-y.ini", "[queue]\nmax_record = 128\n"));

	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), 0);
	EXPECT_STR(errs_text(&rd.e), "");
	EXPECT_STR(rd.f.list, "q.ini 60-y.ini");
	mmapq_config_defaults(&want);
	want.size = 1 << 20;
	want.max_record = 128;
	EXPECT_MEM(&c, &want, sizeof(c));
	errs_free(&rd.e);
	tree_free(&t);
}

/* A key twice in one drop-in is an error, as in one file; the same key in
 * two files is not.  Every error names its own file and line, all files
 * are read, and nothing is applied. */
static void test_dropins_errors(void)
{
	struct tree t = tree_new("m.ini", "[queue]\nsize = 1M\nformat = csv\n");
	const char *d = t.d, *ini = t.ini;
	struct mmapq_config c, before;
	struct reader rd;

	free(put(d, "10-a.ini", "; a drop-in\n[queue]\nsize = 2M\nsize = 4M\n"));
	free(put(d, "20-b.ini", "[log]\nlevel = loud\n[nosuch]\n"));
	free(put(d, "30-c.ini", "[queue]\nsize = 8M\n")); /* fine on its own */

	fill_nondefault(&c);
	before = c;
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -EINVAL);
	EXPECT_STR(errs_text(&rd.e),
	           "m.ini:3: [queue] format: 'csv' is not valid (allowed: int, line, binary)\n"
	           "10-a.ini:4: duplicate key 'size' in [queue] (first set on line 3)\n"
	           "20-b.ini:2: [log] level: 'loud' is not valid "
	           "(allowed: error, warning, notice, info, debug)\n"
	           "20-b.ini:3: unknown section [nosuch] "
	           "(known sections: queue, producer, consumer, nats, log)\n");
	EXPECT_STR(rd.f.list, ""); /* on_file only on success */
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&rd.e);
	tree_free(&t);
}

/* The pair wrong together, set in two files: blamed on the later file,
 * the other one named with its file; a drop-in that sets size (and only
 * that) makes it right again, or wrong; a drop-in whose size is refused
 * on its own is not judged against max_record. */
static void test_dropins_geometry(void)
{
	struct tree t = tree_new("g.ini", "[queue]\nsize = 1M\nformat = binary\n");
	const char *d = t.d, *ini = t.ini;
	char *big = tu_path(d, "50-big.ini"), *want;
	struct mmapq_config c;
	struct reader rd;

	free(put(d, "50-big.ini", "[queue]\n\nmax_record = 1M\n"));
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -EINVAL);
	want = tu_xasprintf("50-big.ini:3: [queue] max_record 1M (line 3) does not fit a ring of size 1M"
	                    " (%s:2): a record's frame (8 bytes and the record rounded up to 8) may"
	                    " take at most a quarter of the ring, so size 1M takes a max_record of at"
	                    " most 262136; raise size to 8M, or lower max_record\n", ini);
	EXPECT_STR(errs_text(&rd.e), want);
	errs_free(&rd.e);
	free(want);

	/* a later drop-in that raises size: fine */
	free(put(d, "60-size.ini", "[queue]\nsize = 8M\n"));
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), 0);
	EXPECT_STR(errs_text(&rd.e), "");
	EXPECT_STR(rd.f.list, "g.ini 50-big.ini 60-size.ini");
	EXPECT_INT(c.size, 8 << 20);
	EXPECT_INT(c.max_record, 1 << 20);
	EXPECT_INT(c.format, MMAPQ_FORMAT_BINARY);
	errs_free(&rd.e);

	/* and one after it that lowers it again: blamed on that one */
	free(put(d, "70-small.ini", "; too small\n[queue]\nsize = 2M\n"));
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -EINVAL);
	want = tu_xasprintf("70-small.ini:3: [queue] max_record 1M (%s:3) does not fit a ring of size"
	                    " 2M (line 3): a record's frame (8 bytes and the record rounded up to 8)"
	                    " may take at most a quarter of the ring, so size 2M takes a max_record of"
	                    " at most 524280; raise size to 8M, or lower max_record\n", big);
	EXPECT_STR(errs_text(&rd.e), want);
	errs_free(&rd.e);
	free(want);

	/* a size refused on its own: that is the error, not the pair (which
	 * the size of g.ini would not fit) */
	free(put(d, "60-size.ini", "[queue]\nsize = 2MB\n"));
	free(put(d, "70-small.ini", "; nothing\n"));
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -EINVAL);
	EXPECT_STR(errs_text(&rd.e), "60-size.ini:2: [queue] size: '2MB' " NOT_BYTES " "
	           SIZE_ALLOWED "\n");
	errs_free(&rd.e);
	free(big);
	tree_free(&t);
}

/*
 * A read that permissions must refuse: path read whole (mmapq_config_read,
 * drop-ins and all) or alone (mmapq_config_load); target is what may not
 * be read, by its own mode: the reader must be able to look it up (its
 * directory reachable), or the refusal would prove nothing about the mode.
 */
struct denied {
	const char *path, *target;
	bool alone;
	int want_r;
	const char *want_err;
};

/* d's read by a process that root's privilege does not let through: a
 * child running as nobody when we are root, else as ourselves.  0 if it
 * got want_r and exactly want_err; TEST_SKIP if it cannot be nobody, or may
 * read target all the same (it says which); 1 otherwise. */
static int read_denied(const struct denied *d)
{
	pid_t pid = tu_fork();
	int st;

	if (pid == 0) {
		struct mmapq_config c;
		struct reader rd;
		struct stat sb;
		int r;

		if (geteuid() == 0 && (r = tu_become_nobody()) < 0)
			tu_skip("cannot become nobody: %s", strerror(-r));
		if (stat(d->target, &sb) < 0) {
			fprintf(stderr, "test_config: uid %u cannot look %s up (%s): its directory is out of"
			        " reach, so a refusal would say nothing of its mode\n", (unsigned)geteuid(),
			        d->target, strerror(errno));
			_exit(1);
		}
		if (access(d->target, R_OK) == 0)
			tu_skip("uid %u may read %s (mode 0) all the same", (unsigned)geteuid(), d->target);
		if (d->alone) {
			errs_init(&rd.e);
			r = mmapq_config_load(&c, d->path, on_error, &rd.e);
		} else {
			r = read_cfg(&c, d->path, NULL, false, &rd);
		}
		if (r != d->want_r || strcmp(errs_text(&rd.e), d->want_err)) {
			fprintf(stderr, "test_config: %s unreadable, as uid %u: %d, want %d; errors:\n%s"
			        "want:\n%s", d->target, (unsigned)geteuid(), r, d->want_r, errs_text(&rd.e),
			        d->want_err);
			_exit(1);
		}
		_exit(0);
	}
	st = tu_wait(pid, 10000);
	if (st < 0) {
		fprintf(stderr, "test_config: the reader of %s did not finish in 10 s\n", d->path);
		tu_kill(pid);
		return 1;
	}
	return tu_exit_code(st);
}

/* F.d missing is fine; not a directory, or a drop-in that is not a
 * readable regular file, is an error naming it. */
static void test_dropins_bad_entries(void)
{
	struct tree t = tree_new("b.ini", "[queue]\nsize = 1M\n");
	const char *dir = t.dir, *d = t.d, *ini = t.ini;
	char *sub = tu_path(d, "20-dir.ini"), *link = tu_path(d, "30-dangling.ini");
	struct mmapq_config c, before;
	struct reader rd;

	/* no b.ini.d at all */
	EXPECT_INT(rmdir(d), 0);
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), 0);
	EXPECT_STR(rd.f.list, "b.ini");
	EXPECT_INT(c.size, 1 << 20);
	errs_free(&rd.e);

	/* b.ini.d a regular file */
	free(put(dir, "b.ini.d", "[queue]\nsize = 2M\n"));
	fill_nondefault(&c);
	before = c;
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -ENOTDIR);
	EXPECT_STR(errs_text(&rd.e), "b.ini.d:0: drop-in directory: Not a directory\n");
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&rd.e);
	EXPECT_INT(unlink(d), 0);

	/* a directory and a dangling symbolic link named like drop-ins; the
	 * good drop-in after them is read all the same */
	EXPECT_INT(mkdir(d, 0755), 0);
	EXPECT_INT(mkdir(sub, 0755), 0);
	EXPECT_INT(symlink("/nonexistent/mmapq.ini", link), 0);
	free(put(d, "40-good.ini", "[queue]\nformat = bogus\n"));
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -EISDIR);
	EXPECT_STR(errs_text(&rd.e),
	           "20-dir.ini:0: is a directory\n"
	           "30-dangling.ini:0: No such file or directory\n"
	           "40-good.ini:2: [queue] format: 'bogus' is not valid (allowed: int, line, binary)\n");
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&rd.e);
	EXPECT_INT(rmdir(sub), 0);
	EXPECT_INT(unlink(link), 0);

	/* a drop-in whose read fails (40-good.ini good again first); a
	 * drop-in or drop-in directory that may not be read: test_unreadable */
	free(put(d, "40-good.ini", "[queue]\nformat = line\n"));
	EXPECT_INT(symlink("/proc/self/mem", link), 0);
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -EIO);
	EXPECT_STR(errs_text(&rd.e), "30-dangling.ini:0: read error: Input/output error\n");
	errs_free(&rd.e);
	tree_free(&t);
	free(sub);
	free(link);
}

/*
 * Files that may not be read, each refused with its name and errno: the
 * main file (alone, and with its drop-ins), a drop-in, the drop-in
 * directory.  Root reads anything: as root the reads are made by a child
 * running as nobody, the tree's directories reachable by it and only the
 * mode of the file in question in the way.  It skips if it cannot be
 * nobody.
 */
static void test_unreadable(void)
{
	struct tree t = tree_new("u.ini", "[queue]\nsize = 1M\n");
	char *dropin = put(t.d, "40-good.ini", "[queue]\nformat = line\n");
	const struct denied cases[] = {
		{t.ini, t.ini, true, -EACCES, "u.ini:0: Permission denied\n"},
		{t.ini, t.ini, false, -EACCES, "u.ini:0: Permission denied\n"},
		{t.ini, dropin, false, -EACCES, "40-good.ini:0: Permission denied\n"},
		{t.ini, t.d, false, -EACCES, "u.ini.d:0: drop-in directory: Permission denied\n"},
	};
	int code = 0;

	EXPECT_INT(chmod(t.dir, 0755), 0); /* tu_mkdtemp made it 0700 */
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]) && !code; i++) {
		struct stat sb;

		EXPECT_INT(stat(cases[i].target, &sb), 0);
		EXPECT_INT(chmod(cases[i].target, 0), 0);
		code = read_denied(&cases[i]);
		EXPECT_INT(chmod(cases[i].target, sb.st_mode & 07777), 0);
	}
	free(dropin);
	tree_free(&t);
	if (code == TEST_SKIP)
		tu_skip("a reader the files' modes keep out cannot be had here (above: why)");
	EXPECT_INT(code, 0);
}

/* missing_ok: F missing reads as empty, its drop-ins still count (1);
 * without it, -ENOENT and nothing is read. */
static void test_dropins_main_missing(void)
{
	struct tree t = tree_new("gone.ini", NULL);
	const char *d = t.d, *ini = t.ini;
	struct mmapq_config c, before, want;
	struct reader rd;

	free(put(d, "50-x.ini", "[log]\nstats_interval = 5\n"));
	fill_nondefault(&c);
	EXPECT_INT(read_cfg(&c, ini, NULL, true, &rd), 1);
	EXPECT_STR(errs_text(&rd.e), "");
	EXPECT_STR(rd.f.list, "50-x.ini");
	mmapq_config_defaults(&want);
	want.stats_interval = 5;
	EXPECT_MEM(&c, &want, sizeof(c));
	errs_free(&rd.e);

	/* no drop-ins either: the base as it is */
	free(put(d, "50-x.ini", "[log]\nstats_interval = x\n"));
	fill_nondefault(&c);
	before = c;
	EXPECT_INT(read_cfg(&c, ini, NULL, false, &rd), -ENOENT);
	EXPECT_STR(errs_text(&rd.e), "");
	EXPECT_MEM(&c, &before, sizeof(c));
	errs_free(&rd.e);
	EXPECT_INT(read_cfg(&c, ini, NULL, true, &rd), -EINVAL);
	EXPECT_STR(errs_text(&rd.e), "50-x.ini:2: [log] stats_interval: 'x' is not a "
	           "decimal integer (allowed: 0 to 86400)\n");
	errs_free(&rd.e);
	tree_free(&t);
}

/* ---- instances ---- */

static void test_instance_defaults(void)
{
	static const char *const bad[] = {
		"", "a/b", "a b", "a\\x2db", "../x", "a\n", "\xc3\xa9t\xc3\xa9", "a;b", "a*",
	};
	char longest[MMAPQ_INSTANCE_NAME_MAX + 2];
	struct mmapq_config c, d;
	struct reader rd;
	struct tree t;

	/* NULL: the single queue's defaults */
	memset(&c, 0x5a, sizeof(c));
	EXPECT_INT(mmapq_config_defaults_for(&c, NULL), 0);
	expect_defaults(&c);

	/* "NAME." before the file name of the queue and the socket; nothing else */
	memset(&c, 0x5a, sizeof(c));
	EXPECT_INT(mmapq_config_defaults_for(&c, "a"), 0);
	EXPECT_STR(c.queue_path, "/var/lib/mmapq/a.queue");
	EXPECT_STR(c.socket_path, "/run/mmapq/a.producer.sock");
	mmapq_config_defaults(&d);
	strcpy(d.queue_path, "/var/lib/mmapq/a.queue");
	strcpy(d.socket_path, "/run/mmapq/a.producer.sock");
	EXPECT_MEM(&c, &d, sizeof(c));
	EXPECT_INT(mmapq_config_defaults_for(&c, "web-2:x_y.z@1"), 0);
	EXPECT_STR(c.queue_path, "/var/lib/mmapq/web-2:x_y.z@1.queue");
	EXPECT_STR(c.socket_path, "/run/mmapq/web-2:x_y.z@1.producer.sock");

	/* the longest name: its socket path still fits sockaddr_un */
	memset(longest, 'n', MMAPQ_INSTANCE_NAME_MAX);
	longest[MMAPQ_INSTANCE_NAME_MAX] = '\0';
	EXPECT(mmapq_config_instance_valid(longest), "'%s' refused", longest);
	EXPECT_INT(mmapq_config_defaults_for(&c, longest), 0);
	EXPECT(strlen(c.socket_path) < MMAPQ_SOCKET_PATH_MAX, "'%s' is too long", c.socket_path);
	EXPECT_INT(strlen(c.socket_path), strlen("/run/mmapq/.producer.sock") + MMAPQ_INSTANCE_NAME_MAX);
	longest[MMAPQ_INSTANCE_NAME_MAX] = 'n';
	longest[MMAPQ_INSTANCE_NAME_MAX + 1] = '\0';
	EXPECT(!mmapq_config_instance_valid(longest), "'%s' accepted", longest);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT(!mmapq_config_instance_valid(bad[i]), "'%s' accepted", bad[i]);
		memcpy(&d, &c, sizeof(d));
		EXPECT_INT(mmapq_config_defaults_for(&c, bad[i]), -EINVAL);
		EXPECT_MEM(&c, &d, sizeof(c)); /* untouched */
	}
	EXPECT(!mmapq_config_instance_valid(NULL), "NULL accepted");

	/* as the base of a read: what the file does not set stays the instance's */
	t = tree_new("a.ini", "[queue]\nsize = 1M\n");
	EXPECT_INT(mmapq_config_defaults_for(&d, "a"), 0);
	EXPECT_INT(read_cfg(&c, t.ini, &d, false, &rd), 0);
	EXPECT_STR(c.queue_path, "/var/lib/mmapq/a.queue");
	EXPECT_STR(c.socket_path, "/run/mmapq/a.producer.sock");
	EXPECT_INT(c.size, 1 << 20);
	errs_free(&rd.e);
	free(put(t.dir, "a.ini", "[queue]\npath = /srv/a/queue\n"));
	EXPECT_INT(read_cfg(&c, t.ini, &d, false, &rd), 0);
	EXPECT_STR(c.queue_path, "/srv/a/queue");
	EXPECT_STR(c.socket_path, "/run/mmapq/a.producer.sock");
	errs_free(&rd.e);
	tree_free(&t);
}

struct change {
	char section[32], key[32], old_value[MMAPQ_CONFIG_STR_MAX], new_value[MMAPQ_CONFIG_STR_MAX];
	int needs_restart;
};

struct changes {
	struct change c[64];
	unsigned n;
};

static void on_change(void *ctx, const char *section, const char *key,
                      const char *old_value, const char *new_value, int needs_restart)
{
	struct changes *ch = ctx;
	struct change *c;

	EXPECT(ch->n < 64, "more than 64 changes");
	c = &ch->c[ch->n++];
	snprintf(c->section, sizeof(c->section), "%s", section);
	snprintf(c->key, sizeof(c->key), "%s", key);
	snprintf(c->old_value, sizeof(c->old_value), "%s", old_value);
	snprintf(c->new_value, sizeof(c->new_value), "%s", new_value);
	c->needs_restart = needs_restart;
}

static void test_diff(void)
{
	struct mmapq_config a, b;
	struct changes *ch = calloc(1, sizeof(*ch));
	unsigned i, j;

	unsigned nchangeable = 0;

	if (!ch)
		tu_die("calloc");
	mmapq_config_defaults(&a);
	fill_nondefault(&b);
	for (i = 0; i < NKEYS; i++)
		nchangeable += keys[i].nondefault != NULL;

	/* Every key that can change is reported once, in table order, with
	 * its restart flag.  This also proves the test's key list is the
	 * table. */
	EXPECT_INT(mmapq_config_diff(&a, &b, on_change, ch), nchangeable);
	EXPECT_INT(ch->n, nchangeable);
	for (i = 0, j = 0; i < NKEYS; i++) {
		if (!keys[i].nondefault)
			continue;
		EXPECT_STR(ch->c[j].section, keys[i].section);
		EXPECT_STR(ch->c[j].key, keys[i].key);
		EXPECT_STR(ch->c[j].old_value, keys[i].def);
		EXPECT_STR(ch->c[j].new_value, keys[i].nondefault);
		EXPECT_INT(ch->c[j].needs_restart, keys[i].needs_restart);
		j++;
	}

	/* The other way round. */
	memset(ch, 0, sizeof(*ch));
	EXPECT_INT(mmapq_config_diff(&b, &a, on_change, ch), nchangeable);
	EXPECT_STR(ch->c[0].old_value, "/srv/mmapq test/q.dat");
	EXPECT_STR(ch->c[0].new_value, "/var/lib/mmapq/queue");

	/* Nothing changed; bytes after a string's NUL are not the value. */
	memset(ch, 0, sizeof(*ch));
	b = a;
	b.output[sizeof(b.output) - 1] = 'x';
	EXPECT_INT(mmapq_config_diff(&a, &b, on_change, ch), 0);
	EXPECT_INT(ch->n, 0);

	/* Exactly the changed keys: one live, one restart. */
	b.sync = MMAPQ_SYNC_BATCH;
	b.mode = 0640;
	EXPECT_INT(mmapq_config_diff(&a, &b, on_change, ch), 2);
	EXPECT_INT(ch->n, 2);
	EXPECT_STR(ch->c[0].key, "sync");
	EXPECT_STR(ch->c[0].old_value, "never");
	EXPECT_STR(ch->c[0].new_value, "batch");
	EXPECT_INT(ch->c[0].needs_restart, 0);
	EXPECT_STR(ch->c[1].key, "mode");
	EXPECT_STR(ch->c[1].old_value, "0660");
	EXPECT_STR(ch->c[1].new_value, "0640");
	EXPECT_INT(ch->c[1].needs_restart, 1);

	/* Sizes in their largest unit; both need a restart (the queue
	 * file's geometry). */
	memset(ch, 0, sizeof(*ch));
	b = a;
	b.size = 64 << 20;
	b.max_record = 1536;
	EXPECT_INT(mmapq_config_diff(&a, &b, on_change, ch), 2);
	EXPECT_STR(ch->c[0].key, "size");
	EXPECT_STR(ch->c[0].old_value, "4M");
	EXPECT_STR(ch->c[0].new_value, "64M");
	EXPECT_INT(ch->c[0].needs_restart, 1);
	EXPECT_STR(ch->c[1].key, "max_record");
	EXPECT_STR(ch->c[1].old_value, "64K");
	EXPECT_STR(ch->c[1].new_value, "1536");
	EXPECT_INT(ch->c[1].needs_restart, 1);
	b.size = a.size;
	b.max_record = a.max_record;
	b.sync = MMAPQ_SYNC_BATCH;
	b.mode = 0640;

	/* A NULL callback just counts. */
	EXPECT_INT(mmapq_config_diff(&a, &b, NULL, NULL), 2);
	/* apply_live takes exactly the keys that need no restart. */
	{
		struct mmapq_config running, target;

		mmapq_config_defaults(&running);
		fill_nondefault(&target);
		mmapq_config_apply_live(&running, &target);
		memset(ch, 0, sizeof(*ch));
		mmapq_config_diff(&running, &target, on_change, ch);
		for (i = 0; i < ch->n; i++)
			EXPECT_INT(ch->c[i].needs_restart, 1);
		for (i = 0, j = 0; i < NKEYS; i++)
			j += keys[i].nondefault && keys[i].needs_restart;
		EXPECT_INT(ch->n, j);
	}
	free(ch);
}

/* The text of every value, written back to a file, loads the same value. */
static void test_format_value_round_trip(void)
{
	struct mmapq_config c, d;
	size_t i;

	fill_nondefault(&c);
	c.mode = 0604;
	c.log_level = MMAPQ_LOG_NOTICE;
	for (i = 0; i < NKEYS; i++) {
		char buf[MMAPQ_CONFIG_STR_MAX], again[MMAPQ_CONFIG_STR_MAX], *text;
		struct errs e;

		EXPECT_INT(mmapq_config_format_value(&c, keys[i].section, keys[i].key,
		                                     buf, sizeof(buf)), 0);
		/* (a TLS client certificate comes with its key) */
		text = tu_xasprintf("[%s]\n%s = %s\n%s", keys[i].section, keys[i].key, buf,
		                    !strcmp(keys[i].key, "tls_cert") ? "tls_key = /k\n" :
		                    !strcmp(keys[i].key, "tls_key") ? "tls_cert = /c\n" : "");
		errs_init(&e);
		EXPECT_INT(load_str("round.ini", text, &d, &e), 0);
		EXPECT_INT(mmapq_config_format_value(&d, keys[i].section, keys[i].key,
		                                     again, sizeof(again)), 0);
		EXPECT_STR(buf, again);
		errs_free(&e);
		free(text);
	}
}

/* Numbers of bytes as text: exact, in the largest unit that divides
 * them; each loads back to the same number. */
static void test_format_bytes(void)
{
	static const struct {
		uint64_t size;
		uint32_t max_record;
		const char *size_text, *max_record_text;
	} cases[] = {
		{ 64, 8, "64", "8" },
		{ UINT64_C(1) << 10, 1000, "1K", "1000" },
		{ UINT64_C(1) << 20, 1536, "1M", "1536" },
		{ UINT64_C(512) << 20, 3 << 20, "512M", "3M" },
		{ UINT64_C(1) << 31, 65544, "2G", "65544" },
		{ UINT64_C(64) << 30, 64 << 20, "64G", "64M" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct mmapq_config c, d;
		char sz[32], mr[32], *text;
		struct errs e;

		mmapq_config_defaults(&c);
		c.size = cases[i].size;
		c.max_record = cases[i].max_record;
		EXPECT_INT(mmapq_config_format_value(&c, "queue", "size", sz, sizeof(sz)), 0);
		EXPECT_INT(mmapq_config_format_value(&c, "queue", "max_record", mr, sizeof(mr)), 0);
		EXPECT_STR(sz, cases[i].size_text);
		EXPECT_STR(mr, cases[i].max_record_text);
		/* each with a partner that takes it: the smallest record, the
		 * largest ring */
		text = tu_xasprintf("[queue]\nsize = %s\nmax_record = 8\n", sz);
		errs_init(&e);
		EXPECT_INT(load_str("bytes.ini", text, &d, &e), 0);
		EXPECT_STR(errs_text(&e), "");
		EXPECT_INT(d.size, cases[i].size);
		errs_free(&e);
		free(text);
		text = tu_xasprintf("[queue]\nsize = 64G\nmax_record = %s\n", mr);
		errs_init(&e);
		EXPECT_INT(load_str("bytes.ini", text, &d, &e), 0);
		EXPECT_STR(errs_text(&e), "");
		EXPECT_INT(d.max_record, cases[i].max_record);
		errs_free(&e);
		free(text);
	}
}

static void test_format_value_errors(void)
{
	struct mmapq_config c;
	char buf[8];

	mmapq_config_defaults(&c);
	EXPECT_INT(mmapq_config_format_value(&c, "queue", "nosuch", buf, sizeof(buf)), -ENOENT);
	EXPECT_INT(mmapq_config_format_value(&c, "log", "size", buf, sizeof(buf)), -ENOENT);
	EXPECT_INT(mmapq_config_format_value(&c, "queue", "capacity", buf, sizeof(buf)), -ENOENT);
	EXPECT_INT(mmapq_config_format_value(&c, "nosuch", "path", buf, sizeof(buf)), -ENOENT);

	/* "auto" needs 5 bytes with its NUL. */
	EXPECT_INT(mmapq_config_format_value(&c, "consumer", "output", buf, 4), -ENOBUFS);
	EXPECT_INT(mmapq_config_format_value(&c, "consumer", "output", buf, 5), 0);
	EXPECT_STR(buf, "auto");
	EXPECT_INT(mmapq_config_format_value(&c, "queue", "size", buf, 2), -ENOBUFS);
	EXPECT_INT(mmapq_config_format_value(&c, "queue", "size", buf, 3), 0);
	EXPECT_STR(buf, "4M");
	EXPECT_INT(mmapq_config_format_value(&c, "queue", "mode", buf, 0), -ENOBUFS);
	EXPECT_INT(mmapq_config_format_value(&c, "queue", "path", buf, sizeof(buf)),
	           -ENOBUFS);
}

static void test_log_level_name(void)
{
	EXPECT_STR(mmapq_log_level_name(MMAPQ_LOG_ERR), "error");
	EXPECT_STR(mmapq_log_level_name(MMAPQ_LOG_WARNING), "warning");
	EXPECT_STR(mmapq_log_level_name(MMAPQ_LOG_NOTICE), "notice");
	EXPECT_STR(mmapq_log_level_name(MMAPQ_LOG_INFO), "info");
	EXPECT_STR(mmapq_log_level_name(MMAPQ_LOG_DEBUG), "debug");
	EXPECT(!mmapq_log_level_name((enum mmapq_log_level)0), "level 0 has a name");
	EXPECT(!mmapq_log_level_name((enum mmapq_log_level)8), "level 8 has a name");
}

static void setup(void)
{
	tu_source_dir(); /* exits 99 without it */
	tmpdir = tu_mkdtemp("config");
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"defaults", test_defaults},
		{"shipped_ini", test_shipped_ini},
		{"nats_values", test_nats_values},
		{"nondefault", test_nondefault},
		{"valid_values", test_valid_values},
		{"invalid_values", test_invalid_values},
		{"golden", test_golden},
		{"geometry_limit", test_geometry_limit},
		{"long_lines", test_long_lines},
		{"nul_bytes", test_nul_bytes},
		{"directory", test_directory},
		{"missing", test_missing},
		{"unreadable", test_unreadable},
		{"empty_and_partial", test_empty_and_partial},
		{"bom_crlf", test_bom_crlf},
		{"null_callback", test_null_callback},
		{"dropins_order_override", test_dropins_order_override},
		{"dropins_other_names_ignored", test_dropins_other_names_ignored},
		{"dropins_errors", test_dropins_errors},
		{"dropins_geometry", test_dropins_geometry},
		{"dropins_bad_entries", test_dropins_bad_entries},
		{"dropins_main_missing", test_dropins_main_missing},
		{"consumer_sections", test_consumer_sections},
		{"instance_defaults", test_instance_defaults},
		{"diff", test_diff},
		{"format_value_round_trip", test_format_value_round_trip},
		{"format_bytes", test_format_bytes},
		{"format_value_errors", test_format_value_errors},
		{"log_level_name", test_log_level_name},
	};

	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
