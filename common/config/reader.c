/* SPDX-License-Identifier: MIT */
/*
 * reader.c -- one file of mmapq.ini, line by line, through inih.
 *
 * inih (Debian's libinih 55: INI_MAX_LINE 200 on the stack, multi-line
 * values on, no line number passed to the handler) is fed through our own
 * reader, because on its own it
 *   - silently splits a line longer than its buffer into several lines,
 *   - glues indented lines onto the previous key,
 *   - never tells the handler about section headers (so an empty unknown
 *     section would go unnoticed) and truncates section names to 49 bytes,
 *   - reports only the first syntax error.
 * The reader reads each physical line whole with getline(), counts lines,
 * checks the line's structure itself and hands inih only lines that cannot
 * trigger any of the above: a key line exactly as written, or a comment in
 * place of everything else (section headers included: the current section
 * is tracked here, not by inih).  inih still splits "key = value ; comment".
 */
#include "config_load.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void cfg_error(struct cfg_parse *p, unsigned line, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	p->nerrors++;
	if (!p->on_error)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	p->on_error(p->ctx, p->path, line, msg);
}

/*
 * Text from the file, made safe to print inside '...': control bytes, DEL
 * and backslash become \xNN, and long text is cut with "...".  UTF-8 passes
 * through.  (Values are trimmed, so a quote inside cannot mislead.)  Returns
 * buf.
 */
static const char *cfg_quote(const char *s, char *buf, size_t size)
{
	static const size_t max_shown = 64;
	size_t i, off = 0;

	for (i = 0; s[i]; i++) {
		unsigned char ch = (unsigned char)s[i];

		if (i == max_shown || off + 8 > size) {
			memcpy(buf + off, "...", 4);
			return buf;
		}
		if (ch < 0x20 || ch == 0x7f || ch == '\\')
			off += (size_t)snprintf(buf + off, size - off, "\\x%02x", ch);
		else
			buf[off++] = (char)ch;
	}
	buf[off] = '\0';
	return buf;
}

/* isspace() as inih uses it, so both agree on what a blank is. */
static bool cfg_isspace(char ch)
{
	return isspace((unsigned char)ch);
}

/* inih's inline comment: ';' right after a blank. */
static bool cfg_inline_comment(const char *line, const char *s)
{
	return *s == ';' && s > line && cfg_isspace(s[-1]);
}

/* [consumer:NAME] (name is NAME): the keys of [consumer], for consumer
 * NAME.  The same section may appear again in the file; its keys are
 * still set once. */
static void cfg_named_section(struct cfg_parse *p, const char *name)
{
	char q[512];
	size_t i;

	p->section = NULL;
	p->skip_section = true;
	if (!mmapq_consumer_name_valid(name)) {
		cfg_error(p, p->lineno, "[" CFG_NAMED_SECTION ":%s]: '%s' is not a consumer name"
		          " (1 to %d letters, digits and '_.@-', not starting with '-')",
		          cfg_quote(name, q, sizeof(q)),
		          cfg_quote(name, q, sizeof(q)), MMAPQ_CONSUMER_NAME_MAX);
		return;
	}
	for (i = 0; i < p->named_n; i++)
		if (!strcmp(p->named_v[i].name, name))
			break;
	if (i == p->named_n) {
		struct cfg_named *v = realloc(p->named_v, (p->named_n + 1) * sizeof(*v));

		if (!v) {
			p->read_err = -ENOMEM;
			return;
		}
		p->named_v = v;
		memset(&v[i], 0, sizeof(v[i]));
		strcpy(v[i].name, name);
		p->named_n++;
	}
	p->section = cfg_find_section(CFG_NAMED_SECTION);
	p->skip_section = false;
	p->named = (int)i;
}

/*
 * "[name]" with nothing after it but blanks or a comment.  Sets the current
 * section (or skip_section after an error).
 */
static void cfg_section_line(struct cfg_parse *p, char *line)
{
	char q[512], q2[512], known[256];
	char *end = strchr(line, ']'), *rest;

	if (!end) {
		cfg_error(p, p->lineno, "unterminated section header '%s' (missing ']')",
		          cfg_quote(line, q, sizeof(q)));
		/* Unknown name: do not blame the keys below on some other section. */
		p->section = NULL;
		p->skip_section = true;
		return;
	}
	*end = '\0';
	for (rest = end + 1; cfg_isspace(*rest); rest++)
		;
	if (*rest && *rest != ';' && *rest != '#')
		cfg_error(p, p->lineno, "unexpected text after section header [%s]: '%s'",
		          cfg_quote(line + 1, q, sizeof(q)), cfg_quote(rest, q2, sizeof(q2)));

	p->named = -1;
	if (!strncmp(line + 1, CFG_NAMED_SECTION ":", sizeof(CFG_NAMED_SECTION))) {
		cfg_named_section(p, line + 1 + sizeof(CFG_NAMED_SECTION));
		return;
	}
	p->section = cfg_find_section(line + 1);
	p->skip_section = !p->section;
	if (!p->section) {
		cfg_list(NULL, known, sizeof(known));
		cfg_error(p, p->lineno, "unknown section [%s] (known sections: %s)",
		          cfg_quote(line + 1, q, sizeof(q)), known);
	}
}

/*
 * Whether line is something inih will split into "key = value" exactly as
 * we mean it: the first '=' or ':' outside an inline comment must be '=',
 * with a name before it.  Reports the error otherwise.
 */
static bool cfg_key_line_ok(struct cfg_parse *p, const char *line)
{
	char q[512];
	const char *s;

	for (s = line; *s && *s != '=' && *s != ':' && !cfg_inline_comment(line, s); s++)
		;
	if (*s != '=') {
		cfg_error(p, p->lineno,
		          "syntax error: expected '[section]', 'key = value' or a comment, got '%s'",
		          cfg_quote(line, q, sizeof(q)));
		return false;
	}
	if (s == line) {
		cfg_error(p, p->lineno, "missing key name before '=' in '%s'",
		          cfg_quote(line, q, sizeof(q)));
		return false;
	}
	return true;
}

/* UTF-8's byte order mark, which the first line may start with. */
static const char cfg_bom[] = "\xef\xbb\xbf";

/*
 * The next physical line of the file, whole, without its line end (LF or
 * CRLF) and, on line 1, without a byte order mark; *lenp is its length (a
 * NUL byte in it counts).  NULL at the end of the file or when reading
 * fails (p->read_err).
 */
static char *cfg_next_line(struct cfg_parse *p, size_t *lenp)
{
	char *line;
	size_t len;
	ssize_t n;

	errno = 0;
	n = getline(&p->buf, &p->bufsize, p->f);
	if (n < 0) {
		if (ferror(p->f))
			p->read_err = errno ? -errno : -EIO;
		else if (errno == ENOMEM)
			p->read_err = -ENOMEM;
		return NULL;
	}
	p->lineno++;
	line = p->buf;
	len = (size_t)n;
	if (len && line[len - 1] == '\n')
		len--;
	if (len && line[len - 1] == '\r')
		len--;
	line[len] = '\0';
	if (p->lineno == 1 && len >= 3 && !memcmp(line, cfg_bom, 3)) {
		line += 3;
		len -= 3;
	}
	*lenp = len;
	return line;
}

/*
 * Whether line (len bytes; inih takes at most max) is a key line to hand
 * to inih as it is.  Everything else reads as a comment: blank lines,
 * comments, section headers (which set the current section here) and
 * lines with an error (reported).
 */
static bool cfg_check_line(struct cfg_parse *p, char *line, size_t len, size_t max)
{
	const char *nul;

	/* inih strips a byte order mark from its first line as well: after
	 * ours, a second one would make it parse another line than the one
	 * checked here (found by tests/fuzz/fuzz_config: "<BOM><BOM>[queue]x=1"
	 * was silently ignored). */
	if (p->lineno == 1 && len >= 3 && !memcmp(line, cfg_bom, 3)) {
		cfg_error(p, p->lineno, "a second byte order mark at the start of the file");
		return false;
	}

	nul = memchr(line, '\0', len);
	if (nul) {
		cfg_error(p, p->lineno, "NUL byte at column %zu", (size_t)(nul - line) + 1);
		return false;
	}
	if (len > max) {
		cfg_error(p, p->lineno, "line too long (%zu bytes, at most %zu)", len, max);
		return false;
	}

	if (!*line || *line == ';' || *line == '#')
		return false;
	if (cfg_isspace(*line)) {
		const char *s = line;

		while (cfg_isspace(*s))
			s++;
		if (*s && *s != ';' && *s != '#')
			cfg_error(p, p->lineno,
			          "indented line: continuation lines are not supported "
			          "(remove the leading blanks)");
		return false;
	}
	if (*line == '[') {
		cfg_section_line(p, line);
		return false;
	}
	return cfg_key_line_ok(p, line);
}

/*
 * The ini_reader: one whole physical line per call, checked, and either
 * handed on as it is or replaced by a comment line.  str has num bytes;
 * inih needs room for the '\n' and the NUL, so lines of up to num - 2
 * bytes (without the line end) get through unsplit.
 */
static char *cfg_reader(char *str, int num, void *stream)
{
	struct cfg_parse *p = stream;
	size_t len;
	char *line;

	if (num < 3) {
		/* Not the inih we know: no room even for a comment line. */
		p->read_err = -ENOBUFS;
		return NULL;
	}
	line = cfg_next_line(p, &len);
	if (!line)
		return NULL;
	if (!cfg_check_line(p, line, len, (size_t)num - 2)) {
		strcpy(str, ";\n");
		return str;
	}
	memcpy(str, line, len);
	memcpy(str + len, "\n", 2);
	return str;
}

/* A key line before any section header. */
static void cfg_key_outside_section(struct cfg_parse *p, const char *name)
{
	char q[512];
	size_t i;

	for (i = 0; i < CFG_NKEYS; i++)
		if (!strcmp(cfg_keys[i].key, name))
			break;
	if (i < CFG_NKEYS)
		cfg_error(p, p->lineno, "key '%s' outside any section (it belongs in [%s])",
		          name, cfg_keys[i].section);
	else
		cfg_error(p, p->lineno, "key '%s' outside any section",
		          cfg_quote(name, q, sizeof(q)));
}

/* Keys an older mmapq read, with what took their place: an error that
 * says so rather than "unknown key". */
static const struct {
	const char *section, *key, *instead;
} cfg_retired_keys[] = {
	{ "queue", "capacity", "the ring is sized in bytes by size (a power of two, such as 4M),"
	  " and each record takes its real length in it" },
	{ "queue", "record_size", "max_record bounds the length of one record (bytes, such as 64K)" },
};

/* true (and said) if [section] key is a retired key */
static bool cfg_retired(struct cfg_parse *p, const char *section, const char *key)
{
	for (size_t i = 0; i < sizeof(cfg_retired_keys) / sizeof(cfg_retired_keys[0]); i++) {
		if (strcmp(cfg_retired_keys[i].section, section) || strcmp(cfg_retired_keys[i].key, key))
			continue;
		cfg_error(p, p->lineno, "[%s] %s is no longer a key: %s (mmapq.ini(5))", section, key,
		          cfg_retired_keys[i].instead);
		return true;
	}
	return false;
}

/* inih's handler, for the key line the reader just handed over. */
static int cfg_handler(void *user, const char *section, const char *name, const char *value)
{
	char q[512], allowed[256], known[256], sec[16 + MMAPQ_CONSUMER_NAME_MAX];
	struct cfg_parse *p = user;
	struct mmapq_config *target;
	const struct cfg_key *k;
	const char *why;
	size_t i;

	(void)section;  /* always "": the reader tracks sections, not inih */
	if (p->skip_section)
		return 1;       /* already reported at the section header */
	if (!p->section) {
		cfg_key_outside_section(p, name);
		return 1;
	}
	/* the section as the file names it: [consumer:NAME] too */
	if (p->named >= 0)
		snprintf(sec, sizeof(sec), "%s:%s", p->section, p->named_v[p->named].name);
	else
		snprintf(sec, sizeof(sec), "%s", p->section);
	k = cfg_find(p->section, name);
	if (!k && cfg_retired(p, p->section, name))
		return 1;
	if (!k) {
		cfg_list(p->section, known, sizeof(known));
		cfg_error(p, p->lineno, "unknown key '%s' in [%s] (known keys: %s)",
		          cfg_quote(name, q, sizeof(q)), sec, known);
		return 1;
	}
	i = (size_t)(k - cfg_keys);
	{
		unsigned *first = p->named >= 0 ? &p->named_v[p->named].first_line[i] : &p->first_line[i];
		if (*first) {
			cfg_error(p, p->lineno, "duplicate key '%s' in [%s] (first set on line %u)",
			          k->key, sec, *first);
			return 1;
		}
		*first = p->lineno;
	}
	target = cfg_merge_target(p, i);

	cfg_allowed(k, allowed, sizeof(allowed));
	if (!*value && k->type != CFG_FILE) {
		cfg_error(p, p->lineno, "[%s] %s: empty value (allowed: %s)",
		          sec, k->key, allowed);
		why = "is empty";
	} else {
		why = cfg_parse_value(k, value, target);
		if (why)
			cfg_error(p, p->lineno, "[%s] %s: '%s' %s (allowed: %s)", sec, k->key,
			          cfg_quote(value, q, sizeof(q)), why, allowed);
	}
	/* what the checks across keys may judge: the last value set, if it
	 * was taken */
	if (target == &p->cfg)
		p->bad[i] = why != NULL;
	return 1;
}

/* A failure that is not about a line: reported once, as line 0. */
int cfg_fail(mmapq_config_error_fn on_error, void *ctx, const char *path,
             int r, const char *what)
{
	char msg[256];

	if (on_error) {
		snprintf(msg, sizeof(msg), "%s%s%s", what ? what : "", what ? ": " : "",
		         strerror(-r));
		on_error(ctx, path, 0, msg);
	}
	return r;
}

/*
 * Reads one file into p->cfg.  0; -ENOENT if it does not exist (reported
 * only if report_missing); another -errno, reported, if it cannot be read
 * (errors in its lines are counted in p->nerrors, not returned).
 */
int cfg_read_file(struct cfg_parse *p, const char *path, bool report_missing)
{
	struct stat st;
	int fd, r;

	/* O_NONBLOCK: a FIFO must not hang us before we can reject it. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		/* Whether a missing file is fine is the caller's business. */
		if (errno == ENOENT && !report_missing)
			return -ENOENT;
		return cfg_fail(p->on_error, p->ctx, path, -errno, NULL);
	}
	if (fstat(fd, &st) < 0) {
		r = -errno;
		close(fd);
		return cfg_fail(p->on_error, p->ctx, path, r, NULL);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		if (p->on_error)
			p->on_error(p->ctx, path, 0, S_ISDIR(st.st_mode) ? "is a directory" :
			                                                "not a regular file");
		return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
	}
	p->f = fdopen(fd, "r");
	if (!p->f) {
		r = -errno;
		close(fd);
		return cfg_fail(p->on_error, p->ctx, path, r, NULL);
	}
	p->nfiles++;
	p->path = path;
	p->lineno = 0;
	p->read_err = 0;
	p->section = NULL;
	p->skip_section = false;
	p->named = -1;
	memset(p->first_line, 0, sizeof(p->first_line));
	free(p->named_v);
	p->named_v = NULL;
	p->named_n = 0;

	r = ini_parse_stream(cfg_reader, p, cfg_handler, p);
	if (r > 0) {
		/* The reader hands inih only lines it parses cleanly, so this
		 * should not happen; if it does, the line was not reported. */
		cfg_error(p, (unsigned)r, "syntax error");
		r = 0;
	}
	if (p->read_err)
		r = cfg_fail(p->on_error, p->ctx, path, p->read_err, "read error");
	else if (r < 0) /* -2: inih's own line buffer (only if built without INI_USE_STACK) */
		r = cfg_fail(p->on_error, p->ctx, path, r == -2 ? -ENOMEM : -EIO, NULL);
	fclose(p->f);
	p->f = NULL;
	free(p->named_v);
	p->named_v = NULL;
	p->named_n = 0;
	return r;
}
