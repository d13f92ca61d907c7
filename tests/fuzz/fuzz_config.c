/* SPDX-License-Identifier: MIT */
/*
 * fuzz_config -- libFuzzer target: the config loader (common/config/, on
 * top of inih).  The input is the text of mmapq.ini, written to a file and
 * loaded with mmapq_config_load.
 *
 * Invariants:
 *   - the result is 0 or -EINVAL (the file is a readable regular file);
 *   - 0: no error was reported, and every value is within its documented
 *     range (config.h, config/mmapq.ini); every key formats; writing the
 *     values back as "key=value" lines and loading that gives the same
 *     configuration (mmapq_config_diff finds no change);
 *   - -EINVAL: at least one error was reported; every error has a line
 *     between 1 and the number of lines in the file, names the file, and
 *     its message is one line of printable text (file text is quoted and
 *     escaped: no log injection); the caller's struct is untouched;
 *   - inih never reports a syntax error of its own (the reader hands it
 *     only lines it parses cleanly: reader.c says this cannot happen);
 *   - the same result without an error callback;
 *   - no crash, no out-of-bounds access, no leak.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>

#include "config.h"
#include "fuzz_common.h"

static char g_path[512], g_path2[512];

struct errs {
	unsigned n;
	unsigned max_line;
	const char *path;
};

static void on_error(void *ctx, const char *file, unsigned line, const char *msg)
{
	struct errs *e = ctx;
	size_t len;

	FUZZ_CHECK(file && !strcmp(file, e->path), "error names '%s'", file ? file : "(null)");
	FUZZ_CHECK(msg && *msg, "empty error message");
	FUZZ_CHECK(line >= 1 && line <= e->max_line, "error on line %u of a %u-line file: %s", line,
	           e->max_line, msg);
	FUZZ_CHECK(strcmp(msg, "syntax error") != 0, "inih reported a syntax error on line %u", line);
	len = strlen(msg);
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK((unsigned char)msg[i] >= 0x20 && msg[i] != 0x7f,
		           "control byte 0x%02x in the message on line %u: %s", (unsigned char)msg[i], line,
		           msg);
	e->n++;
}

static const struct {
	const char *section, *key;
} keys[] = {
	{"queue", "path"}, {"queue", "size"}, {"queue", "max_record"}, {"queue", "format"},
	{"queue", "sync"}, {"queue", "sync_interval"}, {"queue", "mode"}, {"queue", "spin_us"},
	{"queue", "max_consumers"}, {"queue", "max_producers"},
	{"producer", "input"},
	{"producer", "socket"}, {"producer", "generate_rate"}, {"producer", "on_full"},
	{"producer", "client_timeout"}, {"producer", "ack_interval"}, {"producer", "ack_records"},
	{"consumer", "output"}, {"consumer", "start"}, {"consumer", "journal_identifier"},
	{"consumer", "journal_namespace"}, {"consumer", "seq_prefix"}, {"consumer", "on_full"},
	{"consumer", "inactive_timeout"}, {"nats", "servers"},
	{"nats", "subject"}, {"nats", "stream"}, {"nats", "create_stream"}, {"nats", "replicas"},
	{"nats", "storage"}, {"nats", "duplicate_window"}, {"nats", "ordered"},
	{"nats", "credentials"}, {"nats", "tls_ca"}, {"nats", "tls_cert"}, {"nats", "tls_key"},
	{"nats", "max_pending"}, {"nats", "connect_timeout"}, {"nats", "ack_timeout"},
	{"nats", "reconnect_max_wait"}, {"log", "level"}, {"log", "stats_interval"},
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

/* keys[] is every key of keys.def: two configurations that differ
 * in every byte differ in every key, and diff counts them all.  (A key
 * missing here is not written back by the round trip, which then fails on
 * any input that sets it.) */
static void check_key_list(void)
{
	static struct mmapq_config a, b;

	memset(&a, 0, sizeof(a));
	memset(&b, 0xff, sizeof(b));
	b.queue_path[sizeof(b.queue_path) - 1] = b.input[sizeof(b.input) - 1] = '\0';
	b.socket_path[sizeof(b.socket_path) - 1] = b.output[sizeof(b.output) - 1] = '\0';
	b.journal_identifier[sizeof(b.journal_identifier) - 1] = '\0';
	b.journal_namespace[sizeof(b.journal_namespace) - 1] = '\0';
	b.nats_servers[MMAPQ_CONFIG_STR_MAX - 1] = b.nats_subject[MMAPQ_CONFIG_STR_MAX - 1] = '\0';
	b.nats_stream[MMAPQ_CONFIG_STR_MAX - 1] = b.nats_credentials[MMAPQ_CONFIG_STR_MAX - 1] = '\0';
	b.nats_tls_ca[MMAPQ_CONFIG_STR_MAX - 1] = b.nats_tls_cert[MMAPQ_CONFIG_STR_MAX - 1] = '\0';
	b.nats_tls_key[MMAPQ_CONFIG_STR_MAX - 1] = '\0';
	FUZZ_CHECK(mmapq_config_diff(&a, &b, NULL, NULL) == (int)NKEYS,
	           "keys.def has %d keys, fuzz_config.c's keys[] %zu", mmapq_config_diff(&a, &b, NULL, NULL),
	           NKEYS);
}

static bool one_of(const char *s, const char *const *names)
{
	for (; *names; names++)
		if (!strcmp(s, *names))
			return true;
	return false;
}

static void check_ranges(const struct mmapq_config *c)
{
	static const char *const inputs[] = {"stdin", "socket", "generate", NULL};
	static const char *const outputs[] = {"auto", "journal", "stdout", "null", "nats", NULL};
	size_t len;

	len = strnlen(c->queue_path, sizeof(c->queue_path));
	FUZZ_CHECK(len >= 1 && len < sizeof(c->queue_path), "queue path of %zu bytes", len);
	FUZZ_CHECK(c->size >= MMAPQ_SIZE_MIN && c->size <= MMAPQ_SIZE_MAX && !(c->size & (c->size - 1)),
	           "size %" PRIu64, c->size);
	/* what the daemons require of the pair, mmapq_open's check */
	FUZZ_CHECK(c->max_record >= MMAPQ_MAX_RECORD_MIN &&
	           c->max_record <= mmapq_max_record_limit(c->size),
	           "max_record %" PRIu32 " with size %" PRIu64, c->max_record, c->size);
	FUZZ_CHECK(c->format == MMAPQ_FORMAT_INT || c->format == MMAPQ_FORMAT_LINE ||
	           c->format == MMAPQ_FORMAT_BINARY, "format %" PRIu32, c->format);
	FUZZ_CHECK(c->sync == MMAPQ_SYNC_NEVER || c->sync == MMAPQ_SYNC_BATCH ||
	           c->sync == MMAPQ_SYNC_ALWAYS || c->sync == MMAPQ_SYNC_INTERVAL, "sync %d",
	           (int)c->sync);
	FUZZ_CHECK(c->sync_interval >= 1 && c->sync_interval <= 60000u, "sync_interval %" PRIu32,
	           c->sync_interval);
	FUZZ_CHECK(c->mode <= 0777 && (c->mode & 0600) == 0600, "mode %04" PRIo32, c->mode);
	FUZZ_CHECK(c->spin_us <= 10000u, "spin_us %" PRIu32, c->spin_us);
	FUZZ_CHECK(strnlen(c->input, sizeof(c->input)) < sizeof(c->input) && one_of(c->input, inputs),
	           "input '%.64s'", c->input);
	len = strnlen(c->socket_path, sizeof(c->socket_path));
	FUZZ_CHECK(len >= 1 && len < MMAPQ_SOCKET_PATH_MAX, "socket path of %zu bytes", len);
	FUZZ_CHECK(c->generate_rate <= 100000000u, "generate_rate %" PRIu32, c->generate_rate);
	FUZZ_CHECK(c->on_full == MMAPQ_ON_FULL_BLOCK || c->on_full == MMAPQ_ON_FULL_DROP, "on_full %d",
	           (int)c->on_full);
	FUZZ_CHECK(c->client_timeout <= 86400u, "client_timeout %" PRIu32, c->client_timeout);
	FUZZ_CHECK(c->ack_interval <= 3600000u, "ack_interval %" PRIu32, c->ack_interval);
	len = strnlen(c->output, sizeof(c->output));
	FUZZ_CHECK(len < sizeof(c->output) &&
	           (one_of(c->output, outputs) || (!strncmp(c->output, "file:", 5) && len > 5)),
	           "output '%.64s'", c->output);
	len = strnlen(c->journal_identifier, sizeof(c->journal_identifier));
	FUZZ_CHECK(len >= 1 && len <= 64 && strspn(c->journal_identifier, MMAPQ_NAME_CHARS) == len,
	           "journal_identifier '%.80s'", c->journal_identifier);
	len = strnlen(c->journal_namespace, sizeof(c->journal_namespace));
	FUZZ_CHECK(len >= 1 && len <= 64 && strspn(c->journal_namespace, MMAPQ_NAME_CHARS) == len,
	           "journal_namespace '%.80s'", c->journal_namespace);
	FUZZ_CHECK(c->seq_prefix <= 1, "seq_prefix %" PRIu32, c->seq_prefix);
	FUZZ_CHECK(c->consumer_on_full <= 1, "[consumer] on_full %" PRIu32, c->consumer_on_full);
	FUZZ_CHECK(c->inactive_timeout <= 365u * 86400u, "inactive_timeout %" PRIu32, c->inactive_timeout);
	/* [nats]: the strings are checked by the loader's own rules; here what
	 * every one of them promises */
	len = strnlen(c->nats_servers, sizeof(c->nats_servers));
	FUZZ_CHECK(len >= 1 && len < sizeof(c->nats_servers) && !strstr(c->nats_servers, ",,") &&
	           !strchr(c->nats_servers, '@'), "servers '%.64s'", c->nats_servers);
	len = strnlen(c->nats_subject, sizeof(c->nats_subject));
	FUZZ_CHECK(len >= 1 && len <= 255 && !strpbrk(c->nats_subject, "*> \t") &&
	           c->nats_subject[0] != '.' && c->nats_subject[len - 1] != '.' &&
	           !strstr(c->nats_subject, ".."), "subject '%.64s'", c->nats_subject);
	len = strnlen(c->nats_stream, sizeof(c->nats_stream));
	FUZZ_CHECK(len >= 1 && len <= 64 &&
	           strspn(c->nats_stream, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	                  "0123456789_-") == len, "stream '%.64s'", c->nats_stream);
	FUZZ_CHECK(c->nats_create_stream <= 1 && c->nats_ordered <= 1 &&
	           (c->nats_storage == MMAPQ_NATS_FILE || c->nats_storage == MMAPQ_NATS_MEMORY),
	           "[nats] create_stream %" PRIu32 ", ordered %" PRIu32 ", storage %" PRIu32,
	           c->nats_create_stream, c->nats_ordered, c->nats_storage);
	FUZZ_CHECK(c->nats_replicas >= 1 && c->nats_replicas <= 5 && c->nats_duplicate_window >= 1 &&
	           c->nats_duplicate_window <= 86400 && c->nats_max_pending >= 1 &&
	           c->nats_max_pending <= 65536 && c->nats_connect_timeout >= 1 &&
	           c->nats_connect_timeout <= 300 && c->nats_ack_timeout >= 1 &&
	           c->nats_ack_timeout <= 300 && c->nats_reconnect_max_wait >= 1 &&
	           c->nats_reconnect_max_wait <= 300, "[nats] a number out of range");
	FUZZ_CHECK(!c->nats_tls_cert[0] == !c->nats_tls_key[0], "[nats] tls_cert without tls_key");
	FUZZ_CHECK(c->log_level >= MMAPQ_LOG_ERR && c->log_level <= MMAPQ_LOG_DEBUG, "log level %d",
	           (int)c->log_level);
	FUZZ_CHECK(mmapq_log_level_name(c->log_level) != NULL, "log level without a name");
	FUZZ_CHECK(c->stats_interval <= 86400u, "stats_interval %" PRIu32, c->stats_interval);
}

static unsigned count_lines(const uint8_t *d, size_t n)
{
	unsigned lines = 0;

	for (size_t i = 0; i < n; i++)
		lines += d[i] == '\n';
	if (n > 0 && d[n - 1] != '\n')
		lines++;
	return lines;
}

/* A number as the file may write it: digits in base, then, for a size in
 * bytes, one of K, M, G (powers of 1024), for a duration one of s, m, h,
 * d.  false if s is not that or too big to compare. */
static bool number_value(const char *s, unsigned base, unsigned __int128 *ret)
{
	unsigned __int128 v = 0;
	const char *p = s;

	for (; *p >= '0' && *p < (char)('0' + base); p++) {
		v = v * base + (unsigned)(*p - '0');
		if (v >> 80)
			return false;
	}
	if (p == s)
		return false;
	if (*p && p[1] == '\0' && strchr("KMG", *p))
		v <<= 10u * (unsigned)(strchr("KMG", *p) - "KMG" + 1);
	else if (*p && p[1] == '\0' && strchr("smhd", *p))
		v *= *p == 's' ? 1u : *p == 'm' ? 60u : *p == 'h' ? 3600u : 86400u;
	else if (*p)
		return false;
	*ret = v;
	return true;
}

static char *trim(char *a, char *b) /* [a, b) without blanks around it, NUL-terminated */
{
	while (a < b && isspace((unsigned char)*a))
		a++;
	while (b > a && isspace((unsigned char)b[-1]))
		b--;
	*b = '\0';
	return a;
}

/*
 * A loaded file, read again the simple way: every line is blank, a comment,
 * a "[section]" header or "key = value" (inih's rules: the first '=' splits,
 * blanks around are dropped, a ';' after a blank starts a comment).  Each
 * key must be one the loader knows in that section and its value what the
 * loader stored: a line that the loader silently skipped, or read as
 * something else, shows up here.
 */
static void check_lines(const uint8_t *data, size_t size, const struct mmapq_config *c)
{
	static char buf[8192];
	char val[MMAPQ_CONFIG_STR_MAX], section[256] = "";
	size_t pos = 0;
	unsigned lineno = 0;

	while (pos < size) {
		const uint8_t *nl = memchr(data + pos, '\n', size - pos);
		size_t len = nl ? (size_t)(nl - (data + pos)) : size - pos;
		char *line = buf, *end, *eq, *key, *value, *v;
		bool was_space = false;
		int r;

		lineno++;
		FUZZ_CHECK(len < sizeof(buf), "line %u too long for the check", lineno);
		memcpy(buf, data + pos, len);
		pos += len + 1;
		end = buf + len;
		if (end > buf && end[-1] == '\r')
			end--;
		*end = '\0';
		if (lineno == 1 && end - buf >= 3 && !memcmp(buf, "\xef\xbb\xbf", 3))
			line += 3;
		FUZZ_CHECK(!memchr(line, '\0', (size_t)(end - line)), "accepted a NUL on line %u", lineno);
		line = trim(line, end);
		if (!*line || *line == ';' || *line == '#')
			continue;
		if (*line == '[') {
			char *close = strchr(line, ']');
			FUZZ_CHECK(close, "accepted an unterminated section on line %u", lineno);
			FUZZ_CHECK((size_t)(close - line) < sizeof(section), "section name too long");
			memcpy(section, line + 1, (size_t)(close - line - 1));
			section[close - line - 1] = '\0';
			continue;
		}
		eq = strchr(line, '=');
		FUZZ_CHECK(eq && eq > line, "accepted line %u, which is not 'key = value': '%.80s'", lineno,
		           line);
		key = trim(line, eq);
		value = eq + 1;
		while (*value && isspace((unsigned char)*value))
			value++;
		for (v = value; *v; v++) {
			if (*v == ';' && was_space)
				break;
			was_space = isspace((unsigned char)*v);
		}
		value = trim(value, v);
		/* [consumer:NAME] applies only to a read for that consumer (this
		 * one is for none): checked, not loaded */
		if (!strncmp(section, "consumer:", 9))
			continue;
		r = mmapq_config_format_value(c, section, key, val, sizeof(val));
		FUZZ_CHECK(r == 0, "accepted line %u sets [%.64s] '%.64s', which the loader does not know (%d)",
		           lineno, section, key, r);
		if (strcmp(value, val)) {
			/* a number may be written another way: "01M", "1024K" load as "1M" */
			unsigned base = !strcmp(section, "queue") && !strcmp(key, "mode") ? 8 : 10;
			unsigned __int128 in, out;

			FUZZ_CHECK(number_value(value, base, &in) && number_value(val, base, &out) && in == out,
			           "line %u: [%s] %s is '%.64s' in the file, '%.64s' loaded", lineno, section,
			           key, value, val);
		}
	}
}

/* Every value written back as key=value, loaded again: the same config. */
static void check_round_trip(const struct mmapq_config *c)
{
	static struct mmapq_config c2;
	static char text[32768];
	char val[MMAPQ_CONFIG_STR_MAX];
	const char *section = "";
	struct errs e = {0, 0, g_path2};
	size_t off = 0;
	int r;

	for (size_t i = 0; i < NKEYS; i++) {
		r = mmapq_config_format_value(c, keys[i].section, keys[i].key, val, sizeof(val));
		FUZZ_CHECK(r == 0, "format_value [%s] %s: %d", keys[i].section, keys[i].key, r);
		if (strcmp(section, keys[i].section)) {
			section = keys[i].section;
			off += (size_t)snprintf(text + off, sizeof(text) - off, "[%s]\n", section);
		}
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s=%s\n", keys[i].key, val);
		FUZZ_CHECK(off < sizeof(text), "round trip text too long");
	}
	FUZZ_CHECK(mmapq_config_format_value(c, "queue", "nosuchkey", val, sizeof(val)) == -ENOENT,
	           "format_value of an unknown key");
	fuzz_write_file(g_path2, text, off);
	e.max_line = count_lines((const uint8_t *)text, off);
	memset(&c2, 0, sizeof(c2));
	r = mmapq_config_load(&c2, g_path2, on_error, &e);
	FUZZ_CHECK(r == 0 && e.n == 0, "reloading the written-back values: %d, %u errors", r, e.n);
	r = mmapq_config_diff(c, &c2, NULL, NULL);
	FUZZ_CHECK(r == 0, "round trip changed %d values", r);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *dir = fuzz_tmpdir();

	(void)argc;
	(void)argv;
	snprintf(g_path, sizeof(g_path), "%s/mmapq.ini", dir);
	snprintf(g_path2, sizeof(g_path2), "%s/roundtrip.ini", dir);
	check_key_list();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct mmapq_config c, before, defaults;
	struct errs e = {0, 0, g_path};
	int r, r2;

	fuzz_write_file(g_path, data, size);
	e.max_line = count_lines(data, size);
	memset(&c, 0xa5, sizeof(c));
	before = c;
	r = mmapq_config_load(&c, g_path, on_error, &e);
	FUZZ_CHECK(r == 0 || r == -EINVAL, "mmapq_config_load returned %d", r);
	if (r == 0) {
		FUZZ_CHECK(e.n == 0, "success with %u errors reported", e.n);
		check_ranges(&c);
		check_lines(data, size, &c);
		check_round_trip(&c);
		mmapq_config_defaults(&defaults);
		FUZZ_CHECK(mmapq_config_diff(&defaults, &c, NULL, NULL) >= 0, "diff against the defaults");
	} else {
		FUZZ_CHECK(e.n >= 1, "-EINVAL without an error reported");
		FUZZ_CHECK(!memcmp(&c, &before, sizeof(c)), "the struct was changed on failure");
	}

	/* the callback is optional and changes nothing */
	memset(&c, 0xa5, sizeof(c));
	r2 = mmapq_config_load(&c, g_path, NULL, NULL);
	FUZZ_CHECK(r2 == r, "without a callback: %d, with one: %d", r2, r);
	return 0;
}
