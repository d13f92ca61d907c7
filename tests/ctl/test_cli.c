/* SPDX-License-Identifier: MIT */
/*
 * test_cli -- what the three programs print and how they exit, compared
 * exactly with golden transcripts in tests/golden/<group>.txt.
 *
 * A transcript lists, for every command run: the command line, its exit
 * code, its stdout and its stderr (each line prefixed with "| "; bytes
 * outside 0x20..0x7e other than tab are shown as <xx>, NUL too).  Before
 * comparing, the variable parts are normalised:
 *   the test's temporary directory     -> Q
 *   the source directory               -> SRC
 *   the built-in default config path   -> DEFAULT_CONFIG
 *   a pid after "pid ", "\"pid\":" or "_pid\":" (last_pid) -> PID (0 stays 0)
 *   ISO timestamps 2026-01-02T03:04:05Z -> TIME
 *   the digits after _usec":          -> 0
 *   a queue id (32 hex digits)         -> ID
 * Exit codes are also checked one by one, so a wrong code fails with a
 * pointed message even before the transcript is compared.
 *
 * MMAPQ_UPDATE_GOLDEN=1 rewrites the golden files from the actual output
 * instead of comparing: review the git diff afterwards.
 *
 * Groups: help, usage, config, dropins (FILE.d/NAME.ini), instance
 * (--instance NAME), int (status/dump of an int queue), line
 * (status/dump of a line queue with a tab, a backslash, quotes and
 * non-ASCII bytes), bad_input, bad_queue (65), role_taken (69),
 * cannot_create (73), io_error (74), recreate (65 after a geometry change),
 * recreate_legacy (files of format versions 1 to 3 refused by the daemons
 * and migrated), dash_name (consumer names starting with '-'),
 * producers (producers by name: status, --json),
 * any_geometry (status, dump, consumers and metrics under another
 * geometry), recreate_consumers (max_consumers changed, the consumers
 * carried over or named), recreate_producers (max_producers changed, the
 * producers carried over with their counters or named), binary (status,
 * dump and export of binary records, export of lines), send (send's
 * VALUEs and standard input, format binary), repair (a damaged frame:
 * dump, export and the consumer stop there, repair salvages).  Bytes outside 0x20..0x7e other than tab, in
 * the streams and in the command line, are shown as <xx>.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "config.h"
#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#ifndef MMAPQ_DEFAULT_CONFIG
#error "MMAPQ_DEFAULT_CONFIG must come from the build (tests/CMakeLists.txt)"
#endif
#ifndef MMAPQ_VERSION_STRING
#error "MMAPQ_VERSION_STRING must come from the build (tests/CMakeLists.txt)"
#endif

#define DEADLINE_MS 5000

extern char **environ;

static char *dir;    /* fresh per test */
static char *qpath;  /* dir/queue */


#define EXPECT(cond, ...) TU_EXPECT(qpath, cond, __VA_ARGS__)

static void setup(void)
{
	dir = tu_mkdtemp("cli");
	qpath = tu_path(dir, "queue");
}


static char *write_cfg(const char *name, const char *text)
{
	return tu_write_in(dir, name, text);
}

/* ---- normalising ---- */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
	if (n > SIZE_MAX / 4 - b->len)
		tu_die("sb_add: a buffer past SIZE_MAX / 4");
	if (b->len + n + 1 > b->cap) {
		while (b->len + n + 1 > b->cap)
			b->cap = b->cap ? b->cap * 2 : 4096;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			tu_die("realloc");
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
	sb_add(b, s, strlen(s));
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* "2026-01-02T03:04:05Z" at s? */
static bool is_iso_time(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:ddZ";

	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? !is_digit(s[i]) : s[i] != pat[i])
			return false;
	}
	return true;
}

static bool starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f');
}

/* Exactly 32 lowercase hex digits at s (of the text that starts at in)? */
static bool is_queue_id(const char *s, const char *in)
{
	size_t i;

	if (s > in && is_hex(s[-1]))
		return false;
	for (i = 0; i < 2 * MMAPQ_ID_SIZE; i++)
		if (!is_hex(s[i]))
			return false;
	return !is_hex(s[i]);
}

/* The variable parts of a program's output, replaced (see the top). */
static char *normalise(const char *in)
{
	const char *src = tu_source_dir();
	struct sbuf b = {0};
	const char *s = in;

	sb_add(&b, "", 0);
	while (*s) {
		if (starts(s, dir)) {
			sb_str(&b, "Q");
			s += strlen(dir);
		} else if (starts(s, src)) {
			sb_str(&b, "SRC");
			s += strlen(src);
		} else if (starts(s, MMAPQ_DEFAULT_CONFIG)) {
			sb_str(&b, "DEFAULT_CONFIG");
			s += strlen(MMAPQ_DEFAULT_CONFIG);
		} else if ((starts(s, "pid ") || starts(s, "\"pid\":") || starts(s, "_pid\":")) &&
		           is_digit(s[s[0] == 'p' ? 4 : 6]) && s[s[0] == 'p' ? 4 : 6] != '0') {
			size_t k = s[0] == 'p' ? 4 : 6;
			sb_add(&b, s, k);
			sb_str(&b, "PID");
			s += k;
			while (is_digit(*s))
				s++;
		} else if (is_iso_time(s)) {
			sb_str(&b, "TIME");
			s += 20;
		} else if (is_queue_id(s, in)) {
			sb_str(&b, "ID");
			s += 2 * MMAPQ_ID_SIZE;
		} else if (starts(s, "_usec\":") && is_digit(s[7])) {
			sb_str(&b, "_usec\":0");
			s += 7;
			while (is_digit(*s))
				s++;
		} else {
			sb_add(&b, s, 1);
			s++;
		}
	}
	return b.s;
}

/* ---- running a program ---- */

enum out_mode {
	OUT_CAPTURE,     /* stdout is a pipe we read */
	OUT_BROKEN_PIPE, /* stdout is a pipe whose read end is already closed */
};

struct res {
	int code;        /* exit code, 128+signal, or -1 if it had to be killed */
	pid_t pid;
	char *out, *err; /* raw */
	size_t out_len, err_len;
};

static void res_free(struct res *r)
{
	free(r->out);
	free(r->err);
}

/*
 * Run argv (argv[0] is a program name in MMAPQ_BIN_DIR) with `in` on stdin
 * (then end of file), collecting stdout and stderr until it exits, at most
 * timeout_ms.  Never blocks past the deadline: a program that hangs is
 * SIGKILLed and reported as exit -1.  as_nobody: it runs as nobody
 * (tu_become_nobody), or exits TU_NOT_NOBODY.
 */
static struct res run_io_as(bool as_nobody, enum out_mode mode, const char *in, size_t in_len,
                            int timeout_ms, char *const argv[])
{
	int ip[2], op[2], ep[2];
	struct sbuf out = {0}, err = {0};
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
	size_t in_off = 0;
	struct res r = {.code = -1};
	char *path = tu_bin(argv[0]);
	pid_t pid;
	int st;

	if (pipe2(ip, O_CLOEXEC) < 0 || pipe2(op, O_CLOEXEC) < 0 || pipe2(ep, O_CLOEXEC) < 0)
		tu_die("pipe2");
	if (mode == OUT_BROKEN_PIPE) {
		close(op[0]);
		op[0] = -1;
	}
	pid = fork();
	if (pid < 0)
		tu_die("fork");
	if (pid == 0) {
		int e;

		dup2(ip[0], 0);
		dup2(op[1], 1);
		dup2(ep[1], 2);
		if (as_nobody && (e = tu_become_nobody()) < 0) {
			fprintf(stderr, "cannot become nobody: %s\n", strerror(-e));
			_exit(TU_NOT_NOBODY);
		}
		execve(path, argv, environ);
		fprintf(stderr, "test_cli: exec %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	free(path);
	tu_track(pid);
	close(ip[0]);
	close(op[1]);
	close(ep[1]);
	fcntl(ip[1], F_SETFL, O_NONBLOCK);
	if (!in || !in_len) {
		close(ip[1]);
		ip[1] = -1;
	}
	sb_add(&out, "", 0);
	sb_add(&err, "", 0);

	while (op[0] >= 0 || ep[0] >= 0 || ip[1] >= 0) {
		struct pollfd pf[3] = {
			{.fd = op[0], .events = POLLIN},
			{.fd = ep[0], .events = POLLIN},
			{.fd = ip[1], .events = POLLOUT},
		};
		uint64_t now = tu_now_ms();
		int n;

		if (now >= deadline)
			break;
		n = poll(pf, 3, (int)(deadline - now));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			tu_die("poll");
		for (int i = 0; i < 2; i++) {
			int *fd = i == 0 ? &op[0] : &ep[0];
			struct sbuf *b = i == 0 ? &out : &err;
			char chunk[4096];
			ssize_t k;

			if (*fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			k = read(*fd, chunk, sizeof(chunk));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0) {
				close(*fd);
				*fd = -1;
			} else {
				sb_add(b, chunk, (size_t)k);
			}
		}
		if (ip[1] >= 0 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t k = write(ip[1], in + in_off, in_len - in_off);
			if (k > 0)
				in_off += (size_t)k;
			if ((k < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
				close(ip[1]);
				ip[1] = -1;
			}
		}
	}
	for (int i = 0; i < 2; i++) {
		int fd = i == 0 ? op[0] : ep[0];
		if (fd >= 0)
			close(fd);
	}
	if (ip[1] >= 0)
		close(ip[1]);
	{
		uint64_t now = tu_now_ms();
		st = tu_wait(pid, now < deadline ? (int)(deadline - now) : 0);
	}
	if (st == -ETIMEDOUT) {
		fprintf(stderr, "test_cli: %s did not finish within %d ms: killed\n", argv[0], timeout_ms);
		tu_kill(pid);
		r.code = -1;
	} else {
		r.code = tu_exit_code(st);
	}
	tu_untrack(pid);
	r.pid = pid;
	r.out = out.s;
	r.out_len = out.len;
	r.err = err.s;
	r.err_len = err.len;
	return r;
}

static struct res run_io(enum out_mode mode, const char *in, size_t in_len, int timeout_ms,
                         char *const argv[])
{
	return run_io_as(false, mode, in, in_len, timeout_ms, argv);
}

/* ---- transcripts ---- */

struct transcript {
	const char *group;
	struct sbuf text;
};

static void tr_stream(struct sbuf *t, const char *name, const char *data, size_t len)
{
	struct sbuf norm = {0};
	const char *p, *end;
	char tmp[8];

	if (!len)
		return;
	/* normalise first, on the raw bytes (the paths are plain ASCII), each
	 * stretch between NUL bytes on its own; the NULs stay */
	sb_add(&norm, "", 0);
	for (size_t i = 0; i <= len;) {
		size_t k = strnlen(data + i, len - i);
		char *seg = malloc(k + 1), *n;

		if (!seg)
			tu_die("malloc");
		memcpy(seg, data + i, k);
		seg[k] = '\0';
		n = normalise(seg);
		sb_str(&norm, n);
		free(n);
		free(seg);
		i += k + 1;
		if (i <= len)
			sb_add(&norm, "", 1); /* the NUL */
	}
	sb_str(t, name);
	sb_str(t, ":\n");
	p = norm.s;
	end = norm.s + norm.len;
	while (p < end) {
		sb_str(t, "| ");
		while (p < end && *p != '\n') {
			unsigned char c = (unsigned char)*p;
			if ((c >= 0x20 && c < 0x7f) || c == '\t') {
				sb_add(t, p, 1);
			} else {
				snprintf(tmp, sizeof(tmp), "<%02x>", c);
				sb_str(t, tmp);
			}
			p++;
		}
		if (p < end) {
			sb_str(t, "\n");
			p++;
		} else {
			sb_str(t, "\n(no newline at the end)\n");
		}
	}
	free(norm.s);
}

/* Append one command and its results to the transcript.  in: what was on
 * its stdin, in_len bytes (NULL: nothing); redirect: a note on its stdout,
 * or NULL. */
static void tr_add(struct transcript *t, char *const argv[], const char *in, size_t in_len,
                   const char *redirect, const struct res *r)
{
	char code[32];
	char *line;
	struct sbuf cmd = {0};

	sb_add(&cmd, "", 0);
	sb_str(&cmd, "$");
	for (int i = 0; argv[i]; i++) {
		sb_str(&cmd, " ");
		if (!*argv[i] || strpbrk(argv[i], " \t'\"")) {
			sb_str(&cmd, "'");
			sb_str(&cmd, argv[i]);
			sb_str(&cmd, "'");
		} else {
			sb_str(&cmd, argv[i]);
		}
	}
	if (redirect) {
		sb_str(&cmd, " > ");
		sb_str(&cmd, redirect);
	}
	line = normalise(cmd.s);
	/* bytes of an argument shown as in the streams */
	for (const char *c = line; *c; c++) {
		if (((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f) || *c == '\t') {
			sb_add(&t->text, c, 1);
		} else {
			char tmp[8];
			snprintf(tmp, sizeof(tmp), "<%02x>", (unsigned char)*c);
			sb_str(&t->text, tmp);
		}
	}
	sb_str(&t->text, "\n");
	free(line);
	free(cmd.s);
	if (in)
		tr_stream(&t->text, "stdin", in, in_len);
	snprintf(code, sizeof(code), "exit %d\n", r->code);
	sb_str(&t->text, code);
	tr_stream(&t->text, "stdout", r->out, r->out_len);
	tr_stream(&t->text, "stderr", r->err, r->err_len);
	sb_str(&t->text, "\n");
}

/* Describe where two texts first differ. */
static void report_diff(const char *want, const char *got)
{
	unsigned line = 1;
	const char *w = want, *g = got;

	while (*w && *w == *g) {
		if (*w == '\n')
			line++;
		w++;
		g++;
	}
	while (w > want && w[-1] != '\n')
		w--;
	while (g > got && g[-1] != '\n')
		g--;
	fprintf(stderr, "first difference at line %u:\n  want: %.*s\n  got:  %.*s\n", line,
	        (int)strcspn(w, "\n"), w, (int)strcspn(g, "\n"), g);
}

static void tr_check(struct transcript *t)
{
	char *golden = tu_xasprintf("%s/tests/golden/%s.txt", tu_source_dir(), t->group);
	char *want;

	if (getenv("MMAPQ_UPDATE_GOLDEN")) {
		EXPECT(tu_write_file(golden, t->text.s, t->text.len) == 0, "cannot write %s", golden);
		fprintf(stderr, "test_cli: rewrote %s\n", golden);
	} else {
		want = tu_read_file(golden, NULL);
		if (!want || strcmp(want, t->text.s) != 0) {
			char *actual = tu_xasprintf("%s.actual", t->group);
			char *apath = tu_xasprintf("%s/%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", actual);
			tu_write_file(apath, t->text.s, t->text.len);
			fprintf(stderr, "---- %s differs from the actual output (kept in %s; "
			        "MMAPQ_UPDATE_GOLDEN=1 rewrites it):\n", golden, apath);
			if (want)
				report_diff(want, t->text.s);
			fprintf(stderr, "---- actual:\n%s---- end\n", t->text.s);
			free(actual);
			free(apath);
		}
		EXPECT(want && strcmp(want, t->text.s) == 0, "golden file %s does not match", golden);
		free(want);
	}
	free(golden);
	free(t->text.s);
	t->text.s = NULL;
}

/* tr_run's and tr_run_bin's: argv run with in_len bytes of in on its
 * stdin, recorded, its exit code checked. */
static struct res tr_runv(struct transcript *t, int want_code, const char *in, size_t in_len,
                          char *argv[])
{
	struct res r = run_io(OUT_CAPTURE, in, in_len, DEADLINE_MS, argv);

	tr_add(t, argv, in, in_len, NULL, &r);
	if (r.code != want_code) {
		fprintf(stderr, "command:");
		for (int i = 0; argv[i]; i++)
			fprintf(stderr, " %s", argv[i]);
		fprintf(stderr, "\nstdout: %s\nstderr: %s\n", r.out, r.err);
	}
	EXPECT(r.code == want_code, "%s exited %d, want %d", argv[0], r.code, want_code);
	return r;
}

/* The arguments after `last` (program name first, NULL-terminated) into
 * argv[32]. */
#define ARGS_FROM(argv, last)                                        \
	do {                                                         \
		va_list ap;                                          \
		int n_ = 0;                                          \
		va_start(ap, last);                                  \
		while (n_ < 31 && ((argv)[n_] = va_arg(ap, char *))) \
			n_++;                                        \
		va_end(ap);                                          \
		(argv)[n_] = NULL;                                   \
	} while (0)

/*
 * Run a command, record it in the transcript and check its exit code.
 * in: stdin text or NULL; args: program name first, NULL-terminated.
 */
static struct res tr_run(struct transcript *t, int want_code, const char *in, ...)
{
	char *argv[32];

	ARGS_FROM(argv, in);
	return tr_runv(t, want_code, in, in ? strlen(in) : 0, argv);
}

/* The same with in_len bytes of in, of any value, on stdin. */
static struct res tr_run_bin(struct transcript *t, int want_code, const char *in, size_t in_len, ...)
{
	char *argv[32];

	ARGS_FROM(argv, in_len);
	return tr_runv(t, want_code, in, in_len, argv);
}

/* The same, for a command whose output needs no further look. */
#define tr_run_free(...) res_drop(tr_run(__VA_ARGS__))
#define tr_run_free_bin(...) res_drop(tr_run_bin(__VA_ARGS__))
static void res_drop(struct res r)
{
	res_free(&r);
}


static const char *P = "mmapq-producer", *C = "mmapq-consumer", *CTL = "mmapqctl";

/* ---- help and version ---- */

static void test_help(void)
{
	struct transcript t = {.group = "help"};

	tr_run_free(&t, 0, NULL, P, "--help", NULL);
	tr_run_free(&t, 0, NULL, C, "--help", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--help", NULL);
	tr_run_free(&t, 0, NULL, CTL, "-h", NULL);
	tr_check(&t);
}

static void test_version(void)
{
	const char *progs[] = {P, C, CTL};
	/* the suite is built as the programs are: a sanitized build says so */
#if defined(__SANITIZE_ADDRESS__)
	const char *sanitized = ", AddressSanitizer and UndefinedBehaviorSanitizer";
#else
	const char *sanitized = "";
#endif

	for (int i = 0; i < 3; i++) {
		for (int j = 0; j < 2; j++) {
			char *argv[] = {(char *)progs[i], j ? "-V" : "--version", NULL};
			struct res r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS, argv);
			/* the program and its version, the file format it writes, the
			 * build: a test build has fault points, an installed one not */
			char *want = tu_xasprintf("%s %s\nqueue file format version %u (mmapqctl recreate"
			                          " also reads versions 1 to 3)\nbuild: %s%s\n", progs[i],
			                          MMAPQ_VERSION_STRING, (unsigned)MMAPQ_FILE_VERSION,
			                          getenv("MMAPQ_FAULTS") ? "test-only, with fault points"
			                                                 : "release, no fault points",
			                          sanitized);

			EXPECT(r.code == 0, "%s %s exited %d", progs[i], argv[1], r.code);
			EXPECT(strcmp(r.out, want) == 0 && !*r.err, "%s %s printed '%s' / '%s', want '%s'",
			       progs[i], argv[1], r.out, r.err, want);
			free(want);
			res_free(&r);
		}
	}
}

/* ---- usage errors: exit 64 and a message ---- */

static void test_usage(void)
{
	struct transcript t = {.group = "usage"};
	char *cfg = write_cfg("good.ini", "[consumer]\noutput = stdout\n");

	tr_run_free(&t, 64, NULL, P, "--bogus", NULL);
	tr_run_free(&t, 64, NULL, P, "--count", "1", NULL); /* the consumer's option */
	/* a producer's name is a consumer's: checked before anything is read */
	tr_run_free(&t, 64, NULL, P, "--name", "-x", NULL);
	tr_run_free(&t, 64, NULL, P, "--name", "a b", NULL);
	tr_run_free(&t, 64, NULL, P, "-n", "", NULL);
	tr_run_free(&t, 64, NULL, C, "--bogus", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--bogus", "status", NULL);
	tr_run_free(&t, 64, NULL, C, "-x", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--count", "0", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--count", "abc", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--count", "-1", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--count", "", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--count",
	            "99999999999999999999", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--count", NULL);
	tr_run_free(&t, 64, NULL, P, "--config", cfg, "--queue", qpath, "extra", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "extra", NULL);
	tr_run_free(&t, 64, NULL, P, "--config", cfg, "--queue", "", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "frob", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "status", "extra", NULL);
	/* each command takes only its own options, before or after it */
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "status", "--http", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "--json", "top", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "dump", "--socket", qpath, NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "metrics", "--timeout", "5", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "send", "--http", "1", NULL);
	tr_check(&t);
	/* nothing was created by a usage error */
	EXPECT(access(qpath, F_OK) < 0, "a usage error created %s", qpath);
	free(cfg);
}

/* An option the program does not take is named in the message, not its
 * argument. */
static void test_usage_names_option(void)
{
	char *argv1[] = {(char *)P, "--count", "5", NULL};
	char *argv2[] = {(char *)P, "--json", NULL};
	struct res r;

	r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS, argv1);
	EXPECT(r.code == 64, "mmapq-producer --count 5 exited %d", r.code);
	EXPECT(strstr(r.err, "--count") != NULL,
	       "mmapq-producer --count 5: the message does not name --count: '%s'", r.err);
	res_free(&r);
	r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS, argv2);
	EXPECT(r.code == 64 && strstr(r.err, "--json"), "mmapq-producer --json: exit %d, '%s'", r.code,
	       r.err);
	res_free(&r);
}

/* ---- configuration: exit 78, every error as FILE:LINE: message ---- */

static void test_config(void)
{
	struct transcript t = {.group = "config"};
	char *bad = tu_xasprintf("%s/tests/golden/bad-config.ini", tu_source_dir());
	char *good = write_cfg("good.ini", "[queue]\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n");
	char *missing = tu_path(dir, "missing.ini");

	tr_run_free(&t, 78, NULL, P, "--config", bad, "--check-config", NULL);
	tr_run_free(&t, 78, NULL, C, "--config", bad, "--check-config", NULL);
	tr_run_free(&t, 78, NULL, CTL, "--config", bad, "--check-config", NULL);
	/* not only with --check-config: a normal start refuses too */
	tr_run_free(&t, 78, "1 2 3\n", P, "--config", bad, "--queue", qpath, NULL);
	tr_run_free(&t, 78, NULL, C, "--config", bad, "--queue", qpath, "--count", "1", NULL);
	tr_run_free(&t, 78, NULL, CTL, "--config", bad, "--queue", qpath, "status", NULL);
	EXPECT(access(qpath, F_OK) < 0, "a bad configuration still created %s", qpath);
	/* a missing explicit file is an error */
	tr_run_free(&t, 78, NULL, P, "--config", missing, "--check-config", NULL);
	tr_run_free(&t, 78, NULL, C, "--config", missing, "--queue", qpath, NULL);
	tr_run_free(&t, 78, NULL, CTL, "--config", missing, "--queue", qpath, "status", NULL);
	/* a directory is not a configuration file */
	tr_run_free(&t, 78, NULL, P, "--config", dir, "--check-config", NULL);
	/* a good one */
	tr_run_free(&t, 0, NULL, P, "--config", good, "--check-config", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", good, "--check-config", NULL);
	tr_run_free(&t, 0, NULL, CTL, "-c", good, "--check-config", NULL);
	tr_check(&t);
	free(bad);
	free(good);
	free(missing);
}

/* A missing default configuration means the built-in defaults. */
static void test_default_config_missing(void)
{
	const char *progs[] = {P, C, CTL};

	if (access(MMAPQ_DEFAULT_CONFIG, F_OK) == 0) /* on this machine: nothing to test */
		tu_skip("%s exists", MMAPQ_DEFAULT_CONFIG);
	for (int i = 0; i < 3; i++) {
		char *argv[] = {(char *)progs[i], "--check-config", NULL};
		struct res r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS, argv);

		EXPECT(r.code == 0, "%s --check-config without %s exited %d: %s", progs[i],
		       MMAPQ_DEFAULT_CONFIG, r.code, r.err);
		res_free(&r);
	}
}

/* ---- drop-ins and instances ---- */

static char *mkdir_in(const char *name)
{
	char *p = tu_path(dir, name);

	if (mkdir(p, 0755) < 0)
		tu_die("mkdir");
	return p;
}

/* FILE.d/NAME.ini after FILE, in byte order, later files override; the
 * daemons run on the result; every error names its own FILE:LINE. */
static void test_dropins(void)
{
	struct transcript t = {.group = "dropins"};
	char *cfg = write_cfg("m.ini", "[queue]\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n");
	char *d = mkdir_in("m.ini.d");
	char *lines = write_cfg("m.ini.d/50-lines.ini", "; records are lines\n[queue]\nformat = line\n");
	char *ignored = write_cfg("m.ini.d/50-lines.ini~", "an editor's backup is ignored\n");
	char *bad;

	tr_run_free(&t, 0, NULL, P, "--config", cfg, "--check-config", NULL);
	tr_run_free(&t, 0, "a b\nc\n", P, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "2", NULL);
	EXPECT(tu_queue_status(qpath).format == MMAPQ_FORMAT_LINE && tu_queue_status(qpath).size == 65536,
	       "the queue was not made with the drop-in's format and the file's size");
	/* errors in the file and in a drop-in, each where it is */
	bad = write_cfg("m.ini.d/60-bad.ini", "[queue]\nsize = 1M\nsize = 2M\n[log]\nlevel = loud\n");
	free(write_cfg("m.ini", "[queue]\nsize = 7K\n"));
	tr_run_free(&t, 78, NULL, C, "--config", cfg, "--check-config", NULL);
	tr_run_free(&t, 78, NULL, CTL, "--config", cfg, "--queue", qpath, "status", NULL);
	unlink(bad);
	unlink(lines);
	unlink(ignored);
	rmdir(d);
	/* FILE.d not a directory */
	free(write_cfg("m.ini", "[queue]\nsize = 1M\n"));
	free(write_cfg("m.ini.d", "[queue]\nsize = 2M\n"));
	tr_run_free(&t, 78, NULL, P, "--config", cfg, "--check-config", NULL);
	tr_check(&t);
	free(bad);
	free(ignored);
	free(lines);
	free(d);
	free(cfg);
}

/* --instance NAME: the queue file and socket default to NAME.queue and
 * NAME.producer.sock beside the single queue's, NAME.ini (if it sets
 * them) wins; the configuration is NAME.ini (and its drop-ins) beside the
 * default one, missing like it, or beside the file --config names, which
 * is not read (it is the single queue's) and must exist; a bad name is a
 * usage error. */
static void test_instance(void)
{
	struct transcript t = {.group = "instance"};
	char *single = write_cfg("x.ini", "[queue]\npath = /srv/queues/single\n");
	char *none = write_cfg("a.ini", "; sets nothing\n");
	char *own = write_cfg("b-2:x_y.z@1.ini", "[queue]\npath = /srv/queues/b\n[producer]\nsocket = /run/b.sock\n");
	char *orders = write_cfg("orders.ini", "[queue]\npath = /srv/queues/orders\n");
	char *d = mkdir_in("a.ini.d");
	char *cap = write_cfg("a.ini.d/10-size.ini", "[queue]\nsize = 8M\n");
	char *missing = tu_path(dir, "missing.ini");
	char longest[MMAPQ_INSTANCE_NAME_MAX + 2], *longest_ini;
	const char *dir_end = strrchr(MMAPQ_DEFAULT_CONFIG, '/');
	char *name = tu_xasprintf("zz-test-%d", (int)getpid());
	char *want = tu_xasprintf("%.*s/%s.ini: not found; the built-in defaults are used and valid\n"
	                          "instance %s: queue file /var/lib/mmapq/%s.queue, socket "
	                          "/run/mmapq/%s.producer.sock\n",
	                          (int)(dir_end - MMAPQ_DEFAULT_CONFIG), MMAPQ_DEFAULT_CONFIG, name,
	                          name, name, name);
	struct res r;

	memset(longest, 'n', sizeof(longest));
	longest[MMAPQ_INSTANCE_NAME_MAX] = '\0';
	longest_ini = tu_xasprintf("%s.ini", longest);
	free(write_cfg(longest_ini, "; sets nothing\n"));
	tr_run_free(&t, 0, NULL, P, "--instance", "a", "--config", single, "--check-config", NULL);
	tr_run_free(&t, 0, NULL, C, "-i", "b-2:x_y.z@1", "--config", single, "--check-config", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", single, "--instance", "orders", "--check-config", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--instance", longest, "--config", single, "--check-config", NULL);
	longest[MMAPQ_INSTANCE_NAME_MAX] = 'n';
	longest[MMAPQ_INSTANCE_NAME_MAX + 1] = '\0';
	tr_run_free(&t, 64, NULL, CTL, "--instance", longest, "--config", single, "--check-config", NULL);
	tr_run_free(&t, 64, NULL, P, "--instance", "a/b", "--check-config", NULL);
	tr_run_free(&t, 64, NULL, P, "--instance", "", "--check-config", NULL);
	/* beside an explicit --config, NAME.ini must exist; the --config file
	 * need not (only its directory counts) */
	tr_run_free(&t, 78, NULL, P, "--instance", "c", "--config", single, "--check-config", NULL);
	tr_run_free(&t, 0, NULL, P, "--instance", "a", "--config", missing, "--check-config", NULL);
	tr_check(&t);

	/* the default configuration of an instance: DIR/NAME.ini, may be missing */
	r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS,
	           (char *[]){(char *)P, "--instance", name, "--check-config", NULL});
	EXPECT(r.code == 0 && !strcmp(r.out, want), "--instance %s --check-config: exit %d, printed\n%s\n"
	       "want\n%s\nstderr: %s", name, r.code, r.out, want, r.err);
	res_free(&r);
	free(want);
	free(name);
	free(missing);
	free(cap);
	free(d);
	free(orders);
	free(own);
	free(none);
	free(single);
	free(longest_ini);
}

/* ---- status and dump ---- */

static void test_int_queue(void)
{
	struct transcript t = {.group = "int"};
	char *cfg = write_cfg("int.ini", "[queue]\nsize = 256\nmax_record = 8\n[consumer]\noutput = stdout\n");
	struct mmapq_status st;

	tr_run_free(&t, 0, "1 -2 3\n9223372036854775807 -9223372036854775808 +42 007\n", P,
	            "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "2", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "--json", "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "dump", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "--json", "dump", NULL);
	/* --json after the command works too */
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "dump", "--json", NULL);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 2 && st.tail == 7, "head %" PRIu64 " tail %" PRIu64 ", want 2 7", st.head,
	       st.tail);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "5", NULL);
	/* an empty queue */
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "dump", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "dump", NULL);
	tr_check(&t);
	free(cfg);
}

static void test_line_queue(void)
{
	struct transcript t = {.group = "line"};
	char *cfg = write_cfg("line.ini", "[queue]\nformat = line\nmax_record = 40\nsize = 4K\n"
	                                  "[consumer]\noutput = stdout\n");
	const char *in = "plain words\n"
	                 "a\ttab\n"
	                 "back\\slash\n"
	                 "a \"quoted\" word\n"
	                 "latin-1 caf\xe9\n"
	                 "utf-8 caf\xc3\xa9\n"
	                 "\n"
	                 "control \x01 and del \x7f\n"
	                 "crlf\r\n"
	                 "no newline at the end";

	tr_run_free(&t, 0, in, P, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "dump", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "dump", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "10", NULL);
	tr_check(&t);
	free(cfg);
}

/* Decode one JSON string body starting after its opening quote into UTF-8
 * bytes; *end is set past the closing quote.  NULL if malformed. */
static char *json_decode(const char *s, const char **end)
{
	struct sbuf b = {0};

	sb_add(&b, "", 0);
	while (*s && *s != '"') {
		unsigned cp;
		char u[4];
		size_t n;

		if ((unsigned char)*s < 0x20) {
			free(b.s);
			return NULL; /* raw control characters are not valid JSON */
		}
		if (*s != '\\') {
			sb_add(&b, s++, 1);
			continue;
		}
		s++;
		switch (*s) {
		case '"': case '\\': case '/':
			sb_add(&b, s, 1);
			s++;
			continue;
		case 'b': sb_str(&b, "\b"); s++; continue;
		case 'f': sb_str(&b, "\f"); s++; continue;
		case 'n': sb_str(&b, "\n"); s++; continue;
		case 'r': sb_str(&b, "\r"); s++; continue;
		case 't': sb_str(&b, "\t"); s++; continue;
		case 'u':
			if (sscanf(s + 1, "%4x", &cp) != 1) {
				free(b.s);
				return NULL;
			}
			s += 5;
			if (cp >= 0xd800 && cp < 0xdc00 && s[0] == '\\' && s[1] == 'u') {
				unsigned lo;
				if (sscanf(s + 2, "%4x", &lo) == 1 && lo >= 0xdc00 && lo < 0xe000) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					s += 6;
				}
			}
			if (cp < 0x80) {
				u[0] = (char)cp;
				n = 1;
			} else if (cp < 0x800) {
				u[0] = (char)(0xc0 | (cp >> 6));
				u[1] = (char)(0x80 | (cp & 0x3f));
				n = 2;
			} else if (cp < 0x10000) {
				u[0] = (char)(0xe0 | (cp >> 12));
				u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[2] = (char)(0x80 | (cp & 0x3f));
				n = 3;
			} else {
				u[0] = (char)(0xf0 | (cp >> 18));
				u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
				u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
				u[3] = (char)(0x80 | (cp & 0x3f));
				n = 4;
			}
			sb_add(&b, u, n);
			continue;
		default:
			free(b.s);
			return NULL;
		}
	}
	if (*s != '"') {
		free(b.s);
		return NULL;
	}
	*end = s + 1;
	return b.s;
}

/* What a JSON reader gets from `mmapqctl --json dump` is the record: for
 * text that is valid UTF-8 (the JSON text encoding), the decoded string
 * must be the very bytes that were put in. */
static void test_json_utf8_roundtrip(void)
{
	static const char *const lines[] = {
		"ascii only",
		"caf\xc3\xa9",                    /* U+00E9, 2 bytes */
		"euro \xe2\x82\xac",              /* U+20AC, 3 bytes */
		"smile \xf0\x9f\x98\x80",         /* U+1F600, 4 bytes */
		"tab\there \"quoted\" back\\slash",
	};
	char *cfg = write_cfg("line.ini", "[queue]\nformat = line\n");
	char *argv_p[] = {(char *)P, "--config", cfg, "--queue", qpath, NULL};
	char *argv_d[] = {(char *)CTL, "--queue", qpath, "--json", "dump", NULL};
	struct sbuf in = {0};
	const char *s;
	struct res r;
	size_t i = 0;

	sb_add(&in, "", 0);
	for (size_t k = 0; k < sizeof(lines) / sizeof(lines[0]); k++) {
		sb_str(&in, lines[k]);
		sb_str(&in, "\n");
	}
	r = run_io(OUT_CAPTURE, in.s, in.len, DEADLINE_MS, argv_p);
	EXPECT(r.code == 0, "producer exited %d: %s", r.code, r.err);
	res_free(&r);
	r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS, argv_d);
	EXPECT(r.code == 0, "mmapqctl --json dump exited %d: %s", r.code, r.err);
	s = r.out;
	while ((s = strstr(s, "\"line\":\""))) {
		const char *end = s;
		char *got = json_decode(s + 8, &end);

		const char *want = i < sizeof(lines) / sizeof(lines[0]) ? lines[i] : NULL;

		EXPECT(got != NULL, "malformed JSON string in: %s", r.out);
		EXPECT(want != NULL, "more records than put in: %s", r.out);
		EXPECT(strcmp(got, want) == 0,
		       "record %zu: a JSON reader decodes '%s' (%zu bytes), but '%s' (%zu bytes) was put "
		       "in; the output was: %.*s", i, got, strlen(got), want, strlen(want),
		       (int)(end - s), s);
		free(got);
		s = end;
		i++;
	}
	EXPECT(i == sizeof(lines) / sizeof(lines[0]), "%zu records in the JSON dump: %s", i, r.out);
	res_free(&r);
	free(in.s);
	free(cfg);
}

/* ---- bad input: reported, counted, skipped; exit 0 ---- */

static void test_bad_input(void)
{
	struct transcript t = {.group = "bad_input"};
	char *cfg = write_cfg("int.ini", "[consumer]\noutput = stdout\n");
	struct mmapq_status st;
	struct res r;

	r = tr_run(&t, 0, "1 x 2 99999999999999999999 3\n", P, "--config", cfg, "--queue", qpath,
	           NULL);
	EXPECT(strstr(r.err, "mmapq-producer: error: stdin:1:3: not a decimal integer: 'x'"
	              " (skipped)\n") == r.err,
	       "producer stderr: '%s'", r.err);
	res_free(&r);
	st = tu_queue_status(qpath);
	EXPECT(st.tail == 3 && st.producer.bad_input == 2,
	       "tail %" PRIu64 " bad_input %" PRIu64 ", want 3 and 2", st.tail, st.producer.bad_input);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);
	r = tr_run(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "3", NULL);
	EXPECT(strcmp(r.out, "1\n2\n3\n") == 0, "consumer printed '%s'", r.out);
	res_free(&r);
	/* a second run adds to the counter */
	tr_run_free(&t, 0, "-\n+\n--1 0x10 1e3 4\n", P, "--config", cfg, "--queue", qpath, NULL);
	st = tu_queue_status(qpath);
	EXPECT(st.tail == 4 && st.producer.bad_input == 7,
	       "tail %" PRIu64 " bad_input %" PRIu64 ", want 4 and 7", st.tail, st.producer.bad_input);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "status", NULL);
	tr_check(&t);
	free(cfg);
}

/* ---- 65: the queue file is invalid ---- */

static char *file_or_die(const char *path, size_t *len)
{
	char *s = tu_read_file(path, len);
	EXPECT(s != NULL, "cannot read %s", path);
	return s;
}

static void test_bad_queue(void)
{
	struct transcript t = {.group = "bad_queue"};
	char *cfg = write_cfg("good.ini", "[consumer]\noutput = stdout\n");
	char *c2048 = write_cfg("size8m.ini", "[queue]\nsize = 8M\n[consumer]\noutput = stdout\n");
	char *rs128 = write_cfg("mr128.ini", "[queue]\nmax_record = 128\n");
	char *line = write_cfg("line.ini", "[queue]\nformat = line\n");
	char *fifo = tu_path(dir, "fifo"), *sub = tu_path(dir, "subdir"), *link = tu_path(dir, "link");
	char *garbage = tu_path(dir, "garbage"), *shortf = tu_path(dir, "short");
	char gbuf[10000];
	char *before, *after;
	size_t blen, alen;

	/* garbage: not a queue file, left as it was */
	for (size_t i = 0; i < sizeof(gbuf); i++)
		gbuf[i] = (char)("garbage\n"[i % 8]);
	EXPECT(tu_write_file(garbage, gbuf, sizeof(gbuf)) == 0, "write %s", garbage);
	tr_run_free(&t, 65, "1\n", P, "--config", cfg, "--queue", garbage, NULL);
	tr_run_free(&t, 65, NULL, C, "--config", cfg, "--queue", garbage, NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", garbage, "status", NULL);
	after = file_or_die(garbage, &alen);
	EXPECT(alen == sizeof(gbuf) && memcmp(after, gbuf, alen) == 0, "%s was modified", garbage);
	free(after);
	EXPECT(tu_write_file(shortf, gbuf, 100) == 0, "write %s", shortf);
	tr_run_free(&t, 65, "1\n", P, "--config", cfg, "--queue", shortf, NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", shortf, "dump", NULL);

	/* a queue made with the default size, opened with 8M (and other
	 * geometry): refused, both values named, file byte-identical */
	tr_run_free(&t, 0, "1 2 3\n", P, "--config", cfg, "--queue", qpath, NULL);
	before = file_or_die(qpath, &blen);
	tr_run_free(&t, 65, NULL, C, "--config", c2048, "--queue", qpath, NULL);
	tr_run_free(&t, 65, "4\n", P, "--config", c2048, "--queue", qpath, NULL);
	tr_run_free(&t, 65, "4\n", P, "--config", rs128, "--queue", qpath, NULL);
	tr_run_free(&t, 65, "4\n", P, "--config", line, "--queue", qpath, NULL);
	after = file_or_die(qpath, &alen);
	EXPECT(alen == blen && memcmp(before, after, blen) == 0,
	       "a mismatched open modified %s (%zu -> %zu bytes)", qpath, blen, alen);
	free(before);
	free(after);
	/* mmapqctl describes whatever is there, whatever the configuration */
	tr_run_free(&t, 0, NULL, CTL, "--config", c2048, "--queue", qpath, "dump", NULL);

	/* a FIFO, a directory, a symbolic link: refused at once, no hang */
	EXPECT(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
	tr_run_free(&t, 65, "1\n", P, "--config", cfg, "--queue", fifo, NULL);
	tr_run_free(&t, 65, NULL, C, "--config", cfg, "--queue", fifo, NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", fifo, "status", NULL);
	EXPECT(mkdir(sub, 0700) == 0, "mkdir: %s", strerror(errno));
	tr_run_free(&t, 65, "1\n", P, "--config", cfg, "--queue", sub, NULL);
	tr_run_free(&t, 65, NULL, C, "--config", cfg, "--queue", sub, NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", sub, "status", NULL);
	EXPECT(symlink("queue", link) == 0, "symlink: %s", strerror(errno));
	tr_run_free(&t, 65, "1\n", P, "--config", cfg, "--queue", link, NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", link, "status", NULL);
	tr_check(&t);
	free(cfg);
	free(c2048);
	free(rs128);
	free(line);
	free(fifo);
	free(sub);
	free(link);
	free(garbage);
	free(shortf);
}

/* ---- 69: the role is taken ---- */

static void test_role_taken(void)
{
	struct transcript t = {.group = "role_taken"};
	char *cfg = write_cfg("debug.ini", "[consumer]\noutput = stdout\n[log]\nlevel = debug\n");
	char *argv_p[] = {"mmapq-producer", "--config", cfg, "--queue", qpath, NULL};
	char *argv_c[] = {"mmapq-consumer", "--config", cfg, "--queue", qpath, NULL};
	char pidstr[64];
	struct tu_proc first, firstc;
	struct res r;
	size_t n = 0;
	int st;

	/* the first producer waits on its open stdin */
	argv_p[0] = tu_bin("mmapq-producer");
	tu_spawn(&first, argv_p, NULL, true, false, true);
	tu_track(first.pid);
	{
		char *s = tu_read_until(first.err_fd, "as producer", DEADLINE_MS, &n);
		EXPECT(s != NULL, "the first producer did not attach");
		free(s);
	}
	snprintf(pidstr, sizeof(pidstr), "pid %d", (int)first.pid);
	r = tr_run(&t, 69, "1\n", P, "--config", cfg, "--queue", qpath, NULL);
	EXPECT(strstr(r.err, pidstr) != NULL, "the message does not name the first producer (%s): '%s'",
	       pidstr, r.err);
	res_free(&r);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);

	/* the same for the consumer, which waits on the empty queue */
	argv_c[0] = tu_bin("mmapq-consumer");
	tu_spawn(&firstc, argv_c, NULL, false, true, true);
	tu_track(firstc.pid);
	{
		char *s = tu_read_until(firstc.err_fd, "as consumer", DEADLINE_MS, &n);
		EXPECT(s != NULL, "the first consumer did not attach");
		free(s);
	}
	snprintf(pidstr, sizeof(pidstr), "pid %d", (int)firstc.pid);
	r = tr_run(&t, 69, NULL, C, "--config", cfg, "--queue", qpath, "--count", "1", NULL);
	EXPECT(strstr(r.err, pidstr) != NULL, "the message does not name the first consumer (%s): '%s'",
	       pidstr, r.err);
	res_free(&r);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "status", NULL);
	tr_check(&t);

	/* both first ones are unharmed: one record goes through, then stop */
	EXPECT(tu_write_all(first.in_fd, "5\n", 2) == 0, "write to the first producer");
	close(first.in_fd);
	st = tu_wait(first.pid, DEADLINE_MS);
	EXPECT(tu_exit_code(st) == 0, "the first producer exited %d", tu_exit_code(st));
	tu_untrack(first.pid);
	{
		char *s = tu_read_until(firstc.out_fd, "5\n", DEADLINE_MS, &n);
		EXPECT(s && strcmp(s, "5\n") == 0, "the first consumer printed '%s'", s ? s : "(nothing)");
		free(s);
	}
	kill(firstc.pid, SIGTERM);
	st = tu_wait(firstc.pid, DEADLINE_MS);
	EXPECT(tu_exit_code(st) == 0, "the first consumer exited %d on SIGTERM", tu_exit_code(st));
	tu_untrack(firstc.pid);
	close(first.err_fd);
	close(firstc.out_fd);
	close(firstc.err_fd);
	free(argv_p[0]);
	free(argv_c[0]);
	free(cfg);
}

/* ---- 73: cannot create ---- */

static void test_cannot_create(void)
{
	struct transcript t = {.group = "cannot_create"};
	char *cfg = write_cfg("good.ini", "[consumer]\noutput = stdout\n");
	char *nodir = tu_path(dir, "no/such/dir/queue");

	tr_run_free(&t, 73, "1\n", P, "--config", cfg, "--queue", nodir, NULL);
	tr_run_free(&t, 73, NULL, C, "--config", cfg, "--queue", nodir, NULL);
	tr_run_free(&t, 73, NULL, CTL, "--queue", nodir, "status", NULL);
	/* mmapqctl never creates: a missing file is 73, and stays missing */
	tr_run_free(&t, 73, NULL, CTL, "--queue", qpath, "status", NULL);
	EXPECT(access(qpath, F_OK) < 0, "mmapqctl created %s", qpath);
	tr_check(&t);
	free(cfg);
	free(nodir);
}

/*
 * A directory the producer may not write in: exit 73 naming the queue.
 * Root writes anywhere, so as root the programs run as nobody, in a
 * directory nobody owns, mode 0500, inside the test's own made reachable
 * (0755): only the directory's mode is in the way, which mmapqctl shows
 * first (the path is looked up and found missing, not refused).  It skips
 * if it cannot be nobody.
 */
static void test_read_only_dir(void)
{
	char ro[PATH_MAX], roq[PATH_MAX], *cfg;
	char *look[] = {"mmapqctl", "--queue", roq, "status", NULL};
	char *argv[] = {"mmapq-producer", "--config", NULL, "--queue", roq, NULL};
	bool root = geteuid() == 0;
	struct res r;

	EXPECT((size_t)snprintf(ro, sizeof(ro), "%s/readonly", dir) < sizeof(ro) &&
	       (size_t)snprintf(roq, sizeof(roq), "%s/queue", ro) < sizeof(roq), "%s: too long", dir);
	EXPECT(mkdir(ro, 0500) == 0, "mkdir: %s", strerror(errno));
	if (root && chown(ro, TU_NOBODY, TU_NOBODY) < 0) {
		/* EINVAL: a user namespace without uid 65534 */
		EXPECT(errno == EINVAL, "chown: %s", strerror(errno));
		tu_skip("no uid %u here (chown: %s)", TU_NOBODY, strerror(errno));
	}
	EXPECT(!root || chmod(dir, 0755) == 0, "chmod: %s", strerror(errno));
	r = run_io_as(root, OUT_CAPTURE, NULL, 0, DEADLINE_MS, look);
	if (r.code == TU_NOT_NOBODY) {
		r.err[strcspn(r.err, "\n")] = '\0';
		tu_skip("%s", r.err);
	}
	EXPECT(r.code == 73 && strstr(r.err, "does not exist"),
	       "mmapqctl status of %s as uid %u: exit %d, '%s' (want 73, does not exist: the directory"
	       " within reach)", roq, root ? TU_NOBODY : (unsigned)geteuid(), r.code, r.err);
	res_free(&r);
	cfg = write_cfg("good.ini", "[consumer]\noutput = stdout\n");
	argv[2] = cfg;
	r = run_io_as(root, OUT_CAPTURE, "1\n", 2, DEADLINE_MS, argv);
	EXPECT(r.code == 73 && strstr(r.err, roq) && strstr(r.err, "Permission denied"),
	       "read-only directory: exit %d, '%s' (want 73, %s: Permission denied)", r.code, r.err, roq);
	res_free(&r);
	EXPECT(access(roq, F_OK) < 0, "%s was created all the same", roq);
	free(cfg);
}

/* ---- 74: I/O error; nothing unwritten is acknowledged ---- */

static void test_io_error(void)
{
	struct transcript t = {.group = "io_error"};
	char *cfg = write_cfg("good.ini", "[consumer]\noutput = stdout\n");
	char *full = write_cfg("full.ini", "[consumer]\noutput = file:/dev/full\n");
	char *argv[] = {"mmapq-consumer", "--config", cfg, "--queue", qpath, "--count", "3", NULL};
	struct mmapq_status st;
	struct res r;

	tr_run_free(&t, 0, "1 2 3\n", P, "--config", cfg, "--queue", qpath, NULL);

	/* stdout is a pipe nobody reads any more */
	r = run_io(OUT_BROKEN_PIPE, NULL, 0, DEADLINE_MS, argv);
	tr_add(&t, argv, NULL, 0, "(a pipe whose read end is closed)", &r);
	EXPECT(r.code == 74, "consumer writing to a closed pipe exited %d, want 74: %s", r.code, r.err);
	res_free(&r);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 0 && st.tail == 3,
	       "records acknowledged although not written: head %" PRIu64 " tail %" PRIu64, st.head,
	       st.tail);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);

	/* a file on a full device (Linux always has one) */
	EXPECT(access("/dev/full", W_OK) == 0, "/dev/full: %s", strerror(errno));
	tr_run_free(&t, 74, NULL, C, "--config", full, "--queue", qpath, "--count", "3", NULL);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 0 && st.tail == 3,
	       "records acknowledged although not written: head %" PRIu64 " tail %" PRIu64,
	       st.head, st.tail);
	/* and they are all still delivered */
	r = tr_run(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "3", NULL);
	EXPECT(strcmp(r.out, "1\n2\n3\n") == 0, "consumer printed '%s'", r.out);
	res_free(&r);
	tr_check(&t);
	free(cfg);
	free(full);
}

/* ---- 65 after a geometry change, and mmapqctl recreate ---- */

/*
 * size changes from 128 to 256 bytes in mmapq.ini with 5 records in the
 * file: both daemons refuse with 65 and say what to do; recreate refuses
 * while a daemon is attached (69) and when the records do not fit a ring of
 * 64 bytes (65, in bytes), then carries them over; the consumer under the
 * new configuration gets them.
 */
static void test_recreate(void)
{
	struct transcript t = {.group = "recreate"};
	char *c8 = write_cfg("c8.ini", "[queue]\nsize = 128\nmax_record = 8\n[consumer]\noutput = stdout\n[log]\nlevel = debug\n");
	char *c16 = write_cfg("c16.ini", "[queue]\nsize = 256\nmax_record = 8\n[consumer]\noutput = stdout\n");
	char *c4 = write_cfg("c4.ini", "[queue]\nsize = 64\nmax_record = 8\n");
	char *argv_c[] = {tu_bin("mmapq-consumer"), "--config", c8, "--queue", qpath, "--count", "6", NULL};
	struct tu_proc live;
	struct res r;
	size_t n;
	int st;

	tr_run_free(&t, 0, "1 2 3 4 5\n", P, "--config", c8, "--queue", qpath, NULL);
	tr_run_free(&t, 65, "6\n", P, "--config", c16, "--queue", qpath, NULL);
	tr_run_free(&t, 65, NULL, C, "--config", c16, "--queue", qpath, NULL);
	EXPECT(tu_queue_status(qpath).size == 128 && tu_queue_status(qpath).tail == 5, "the refused daemons changed the file");

	/* a consumer of the old geometry is attached (it would take 6) */
	tu_spawn(&live, argv_c, NULL, false, true, true);
	tu_track(live.pid);
	{
		char *s = tu_read_until(live.err_fd, "as consumer", DEADLINE_MS, &n);
		EXPECT(s != NULL, "the consumer did not attach");
		free(s);
	}
	r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS,
	           (char *[]){(char *)CTL, "--config", c16, "--queue", qpath, "recreate", NULL});
	EXPECT(r.code == 69 && strstr(r.err, "consumer 'default' is attached") && tu_queue_status(qpath).size == 128,
	       "recreate with a consumer attached: exit %d, stderr '%s'", r.code, r.err);
	res_free(&r);
	kill(live.pid, SIGTERM);
	st = tu_wait(live.pid, DEADLINE_MS);
	tu_untrack(live.pid);
	EXPECT(tu_exit_code(st) == 0, "the live consumer exited %d", tu_exit_code(st));
	{
		/* it consumed the 5 records before it was stopped */
		char *s = tu_read_all(live.out_fd, DEADLINE_MS, &n);
		EXPECT(s && !strcmp(s, "1\n2\n3\n4\n5\n"), "the live consumer printed '%s'", s ? s : "");
		free(s);
	}
	close(live.out_fd);
	close(live.err_fd);
	tr_run_free(&t, 0, "6 7 8 9 10\n", P, "--config", c8, "--queue", qpath, NULL);

	tr_run_free(&t, 65, NULL, CTL, "--config", c4, "--queue", qpath, "recreate", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", c16, "--queue", qpath, "recreate", NULL);
	{
		DIR *d = opendir(dir);
		struct dirent *e;
		while (d && (e = readdir(d)))
			EXPECT(!strstr(e->d_name, ".recreate-"), "recreate left %s behind", e->d_name);
		if (d)
			closedir(d);
	}
	tr_run_free(&t, 0, NULL, CTL, "--config", c16, "--queue", qpath, "recreate", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c16, "--queue", qpath, "--count", "5", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", c16, "--queue", qpath, "status", NULL);
	tr_check(&t);
	free(argv_c[0]);
	free(c4);
	free(c8);
	free(c16);
}

/* ---- files of format versions 1 to 3, and mmapqctl recreate ---- */

static int consumers_in(const char *path, struct mmapq_consumer_status *cs);

/* Whether the file at path still holds the len bytes of before. */
static bool file_same(const char *path, const char *before, size_t len)
{
	size_t n;
	char *now = tu_read_file(path, &n);
	bool same = now && n == len && !memcmp(now, before, len);

	free(now);
	return same;
}

/* Run argv (no transcript), its exit code checked: the result. */
static struct res run_checked(int want_code, const char *in, size_t in_len, char *const argv[])
{
	struct res r = run_io(OUT_CAPTURE, in, in_len, DEADLINE_MS, argv);

	EXPECT(r.code == want_code, "%s %s exited %d, want %d; stderr '%s'", argv[0],
	       argv[1] ? argv[1] : "", r.code, want_code, r.err);
	return r;
}

/*
 * Queue files as older mmapq versions wrote them (format versions 1 to 3,
 * rings of fixed-size slots; tu_write_legacy_queue): version 3, int, 5
 * records from seq 10, consumers a (at 12) and b (at 10); version 2, line;
 * version 1, int.  Both daemons refuse each with 65, the library's message
 * naming mmapqctl recreate, and leave it byte for byte; status, dump,
 * export and metrics read it (capacity and slots as they were); recreate
 * refuses, in bytes, records that do not fit the new size or max_record,
 * and otherwise carries records and consumers into a version-4 file (the
 * oldest record kept is seq 0 there, each consumer where it was among the
 * records), which the daemons take: each consumer gets its records.
 */
static void test_recreate_legacy(void)
{
	struct transcript t = {.group = "recreate_legacy"};
	char *ci = write_cfg("int.ini", "[queue]\nsize = 256\nmax_record = 8\n[consumer]\noutput = stdout\n");
	char *cl = write_cfg("line.ini", "[queue]\nformat = line\nsize = 4K\nmax_record = 512\n"
	                     "[consumer]\noutput = stdout\n");
	char *cl_short = write_cfg("short.ini", "[queue]\nformat = line\nsize = 4K\nmax_record = 16\n");
	char *cl_small = write_cfg("small.ini", "[queue]\nformat = line\nsize = 256\nmax_record = 48\n");
	int64_t v[5] = {1, 2, 3, 4, 5};
	static const char *const lines[] = {"first line", "", "a line of forty bytes, more than sixteen"};
	struct mmapq_record recs[8];
	struct tu_legacy_consumer lc[2] = {{"a", 12}, {"b", 10}}, one = {"default", 0};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq_status st;
	struct res r;
	char *before, *want;
	size_t blen;

	/* version 3 */
	for (int i = 0; i < 5; i++)
		recs[i] = (struct mmapq_record){.seq = 10 + (uint64_t)i, .len = 8, .data = &v[i]};
	EXPECT(tu_write_legacy_queue(qpath, 3, MMAPQ_FORMAT_INT, 16, 64, 10, recs, 5, lc, 2, 0xab) == 0,
	       "cannot write a version-3 file");
	before = file_or_die(qpath, &blen);
	r = tr_run(&t, 65, "6\n", P, "--config", ci, "--queue", qpath, NULL);
	EXPECT(strstr(r.err, "mmapqctl recreate"), "the producer's refusal does not name mmapqctl recreate:"
	       " '%s'", r.err);
	res_free(&r);
	r = tr_run(&t, 65, NULL, C, "--config", ci, "--queue", qpath, "--name", "a", NULL);
	EXPECT(strstr(r.err, "mmapqctl recreate"), "the consumer's refusal does not name mmapqctl recreate:"
	       " '%s'", r.err);
	res_free(&r);
	EXPECT(file_same(qpath, before, blen), "a refused daemon changed the version-3 file");
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "--json", "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "dump", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "export", NULL);
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", qpath, "metrics", NULL});
	want = tu_xasprintf("mmapq_capacity_records{queue=\"%s\"} 16\n", qpath);
	EXPECT(strstr(r.out, want) && strstr(r.out, "version=\"3\""), "metrics of a version-3 file: %s",
	       r.out);
	free(want);
	res_free(&r);
	/* repair refuses it, and names recreate */
	tr_run_free(&t, 65, NULL, CTL, "--config", ci, "--queue", qpath, "repair", NULL);
	EXPECT(file_same(qpath, before, blen), "mmapqctl status, dump, export or repair changed the file");
	free(before);
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "recreate", NULL);
	st = tu_queue_status(qpath);
	EXPECT(st.version == MMAPQ_FILE_VERSION && st.head == 0 && st.tail == 5 && st.size == 256 &&
	       st.used_bytes == 5 * 16, "recreate made version %u, head %" PRIu64 " tail %" PRIu64
	       " size %" PRIu64 " used %" PRIu64, (unsigned)st.version, st.head, st.tail, st.size,
	       st.used_bytes);
	EXPECT(consumers_in(qpath, cs) == 2 && !strcmp(cs[0].name, "a") && cs[0].position == 2 &&
	       !strcmp(cs[1].name, "b") && cs[1].position == 0, "the consumers were not carried over"
	       " where they were");
	r = tr_run(&t, 0, NULL, C, "--config", ci, "--queue", qpath, "--name", "a", "--count", "3", NULL);
	EXPECT(!strcmp(r.out, "3\n4\n5\n"), "consumer a got '%s'", r.out);
	res_free(&r);
	r = tr_run(&t, 0, NULL, C, "--config", ci, "--queue", qpath, "--name", "b", "--count", "5", NULL);
	EXPECT(!strcmp(r.out, "1\n2\n3\n4\n5\n"), "consumer b got '%s'", r.out);
	res_free(&r);
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "status", NULL);

	/* version 2, line: what does not fit is refused in bytes (the lines
	 * take 24 + 8 + 6 * 48 = 320 bytes of ring) */
	for (int i = 0; i < 8; i++)
		recs[i] = (struct mmapq_record){.seq = 7 + (uint64_t)i,
		                                .len = (uint32_t)strlen(lines[i < 2 ? i : 2]),
		                                .data = lines[i < 2 ? i : 2]};
	one.position = 7;
	EXPECT(tu_write_legacy_queue(qpath, 2, MMAPQ_FORMAT_LINE, 8, 100, 7, recs, 8, &one, 1, 0) == 0,
	       "cannot write a version-2 file");
	before = file_or_die(qpath, &blen);
	tr_run_free(&t, 65, NULL, C, "--config", cl, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cl, "--queue", qpath, "--json", "dump", NULL);
	tr_run_free(&t, 65, NULL, CTL, "--config", cl_short, "--queue", qpath, "recreate", NULL);
	tr_run_free(&t, 65, NULL, CTL, "--config", cl_small, "--queue", qpath, "recreate", NULL);
	EXPECT(file_same(qpath, before, blen), "a refused recreate changed the version-2 file");
	free(before);
	tr_run_free(&t, 0, NULL, CTL, "--config", cl, "--queue", qpath, "recreate", NULL);
	r = tr_run(&t, 0, NULL, C, "--config", cl, "--queue", qpath, "--count", "3", NULL);
	EXPECT(!strcmp(r.out, "first line\n\na line of forty bytes, more than sixteen\n"),
	       "the consumer got '%s'", r.out);
	res_free(&r);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 3 && st.tail == 8 && st.used_bytes == 5 * 48, "after the line file: head %"
	       PRIu64 " tail %" PRIu64 " used %" PRIu64, st.head, st.tail, st.used_bytes);

	/* version 1, int, as it was (16 bytes of slot header in every slot) */
	for (int i = 0; i < 3; i++)
		recs[i] = (struct mmapq_record){.seq = (uint64_t)i, .len = 8, .data = &v[i]};
	one.position = 0;
	EXPECT(tu_write_legacy_queue(qpath, 1, MMAPQ_FORMAT_INT, 8, 64, 0, recs, 3, &one, 1, 0) == 0,
	       "cannot write a version-1 file");
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", ci, "--queue", qpath, "recreate", NULL);
	r = tr_run(&t, 0, NULL, C, "--config", ci, "--queue", qpath, "--count", "3", NULL);
	EXPECT(!strcmp(r.out, "1\n2\n3\n"), "the consumer got '%s'", r.out);
	res_free(&r);
	tr_check(&t);
	free(ci);
	free(cl);
	free(cl_short);
	free(cl_small);
}

/* ---- binary records: status, dump, export ---- */

/* A record of format binary into b: its length (4 bytes, big-endian) and
 * its n bytes. */
static void sb_binary(struct sbuf *b, const void *data, size_t n)
{
	unsigned char len[4] = {(unsigned char)(n >> 24), (unsigned char)(n >> 16),
	                        (unsigned char)(n >> 8), (unsigned char)n};

	sb_add(b, (const char *)len, 4);
	sb_add(b, data, n);
}

/* The bytes of a JSON string of hex digits at s (after its quote): n of
 * them, malloc'd; NULL if it is not one. */
static char *hex_decode(const char *s, size_t *n)
{
	size_t len = strspn(s, "0123456789abcdef");
	char *out;

	if (s[len] != '"' || len % 2)
		return NULL;
	out = malloc(len / 2 + 1);
	if (!out)
		tu_die("malloc");
	for (size_t i = 0; i < len / 2; i++) {
		unsigned x;
		sscanf(s + 2 * i, "%2x", &x);
		out[i] = (char)x;
	}
	*n = len / 2;
	return out;
}

/*
 * Binary records (any bytes: NUL, control bytes, bytes that are not
 * UTF-8, UTF-8, a C1 control, empty, up to max_record): status and dump
 * (escaped as text, binary_hex in JSON: decoded, the very bytes), export
 * (exactly the producer's input, byte for byte, for any length: fed to a
 * producer of another queue, the same records); line records too, a line
 * that ends in '\r' included.
 */
/* Producers by name (fan-in): status and --json list each with what it
 * published, the default one beside the named ones. */
static void test_producers_queue(void)
{
	struct transcript t = {.group = "producers"};
	char *cfg = write_cfg("p.ini", "[queue]\nsize = 4K\nmax_record = 8\n[consumer]\noutput = stdout\n");

	tr_run_free(&t, 0, "1 2 3\n", P, "--config", cfg, "--queue", qpath, "--name", "alpha", NULL);
	tr_run_free(&t, 0, "4 5\n", P, "--config", cfg, "--queue", qpath, "-n", "beta", NULL);
	tr_run_free(&t, 0, "6\n", P, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, "7\n", P, "--config", cfg, "--queue", qpath, "--name", "alpha", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--count", "7", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "status", NULL);
	tr_check(&t);
	free(cfg);
}

static void test_binary_queue(void)
{
	struct transcript t = {.group = "binary"};
	char *cfg = write_cfg("bin.ini", "[queue]\nformat = binary\nsize = 64K\nmax_record = 4K\n");
	char *lcfg = write_cfg("line.ini", "[queue]\nformat = line\nsize = 4K\nmax_record = 64\n");
	char *q2 = tu_path(dir, "queue2");
	static const char *const recs[] = {
		"plain", "", "\x01\x7f", "tab\there \\ backslash", "caf\xc3\xa9", "latin-1 caf\xe9",
		"\xc2\x85 is C1", "\xff\xfe",
	};
	const size_t nrecs = sizeof(recs) / sizeof(recs[0]);
	struct sbuf in = {0}, all = {0};
	char big[4096];
	struct res r, r2;
	const char *p;
	size_t i = 0;

	sb_add(&in, "", 0);
	for (size_t k = 0; k < nrecs; k++)
		sb_binary(&in, recs[k], strlen(recs[k]));
	sb_binary(&in, "\0nul\0", 5);
	tr_run_free_bin(&t, 0, in.s, in.len, P, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "dump", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "dump", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "export", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--queue", qpath, "--json", "export", NULL);

	/* the largest record, and one of every byte value */
	for (size_t k = 0; k < sizeof(big); k++)
		big[k] = (char)(k * 7 + k / 256);
	sb_add(&all, in.s, in.len);
	sb_binary(&all, big, sizeof(big));
	sb_binary(&all, big, 256);
	{
		struct sbuf more = {0};
		sb_binary(&more, big, sizeof(big));
		sb_binary(&more, big, 256);
		res_drop(run_checked(0, more.s, more.len,
		                     (char *[]){(char *)P, "--config", cfg, "--queue", qpath, NULL}));
		free(more.s);
	}
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", qpath, "export", NULL});
	EXPECT(r.out_len == all.len && !memcmp(r.out, all.s, all.len),
	       "export (%zu bytes) is not what the producer read (%zu bytes)", r.out_len, all.len);
	/* fed back: the same records */
	res_drop(run_checked(0, r.out, r.out_len,
	                     (char *[]){(char *)P, "--config", cfg, "--queue", q2, NULL}));
	res_free(&r);
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", qpath, "dump", NULL});
	r2 = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", q2, "dump", NULL});
	EXPECT(!strcmp(r.out, r2.out), "the records exported and fed back differ:\n%s\n%s", r.out,
	       r2.out);
	res_free(&r);
	res_free(&r2);

	/* what a JSON reader gets from binary_hex is the record */
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", qpath, "--json", "dump", NULL});
	for (p = r.out; (p = strstr(p, "\"binary_hex\":\"")); i++) {
		size_t n;
		char *got = hex_decode(p + 14, &n);
		const char *want = i < nrecs ? recs[i] : i == nrecs ? "\0nul\0" : big;
		size_t wlen = i < nrecs ? strlen(recs[i]) : i == nrecs ? 5 : i == nrecs + 1 ? sizeof(big) : 256;

		EXPECT(got && n == wlen && !memcmp(got, want, n), "record %zu: binary_hex decodes to %zu"
		       " bytes, not the %zu put in", i, got ? n : 0, wlen);
		free(got);
		p += 14;
	}
	EXPECT(i == nrecs + 3, "%zu records in the JSON dump, want %zu", i, nrecs + 3);
	res_free(&r);

	/* lines: exported as the producer reads them, a line that ends in
	 * '\r' with another one (the producer drops one before '\n') */
	unlink(q2);
	tr_run_free(&t, 0, "one\ntwo cr\r\r\n\ncaf\xe9\nlast\r", P, "--config", lcfg, "--queue", q2, NULL);
	r = tr_run(&t, 0, NULL, CTL, "--queue", q2, "export", NULL);
	r2 = run_checked(0, r.out, r.out_len, (char *[]){(char *)P, "--config", lcfg, "--queue", q2, NULL});
	res_free(&r2);
	r2 = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", q2, "export", NULL});
	EXPECT(r2.out_len == 2 * r.out_len && !memcmp(r2.out, r.out, r.out_len) &&
	       !memcmp(r2.out + r.out_len, r.out, r.out_len),
	       "the lines exported and fed back differ: '%s' then '%s'", r.out, r2.out);
	res_free(&r);
	res_free(&r2);
	tr_check(&t);
	free(in.s);
	free(all.s);
	free(q2);
	free(cfg);
	free(lcfg);
}

/* ---- send: each VALUE one record, in the queue's format ---- */

/*
 * A producer serving its socket, format binary: send takes each VALUE as
 * one record (any bytes an argument can hold, empty, as long as max_record
 * and longer than the 64 KiB it sends at a time), standard input as the
 * producer reads it (framed), and reports a record over max_record as
 * rejected (65); format line
 * refuses a VALUE holding a newline (64) before it connects.
 */
static void test_send_records(void)
{
	struct transcript t = {.group = "send"};
	char *sock = tu_path(dir, "p.sock");
	char *cfg = tu_xasprintf("[queue]\nformat = binary\nsize = 1M\nmax_record = 100000\n"
	                         "[producer]\ninput = socket\nsocket = %s\n[log]\nlevel = debug\n", sock);
	char *bin = write_cfg("bin.ini", cfg);
	char *line = write_cfg("line.ini", "[queue]\nformat = line\n");
	char *argv_p[] = {tu_bin("mmapq-producer"), "--config", bin, "--queue", qpath, NULL};
	/* at most 128 KiB in one argument (MAX_ARG_STRLEN) */
	char *long_value = malloc(100001), *over = malloc(100002);
	struct sbuf want = {0};
	struct tu_proc prod;
	struct res r;
	int st;

	EXPECT(long_value && over, "malloc");
	memset(long_value, 'v', 100000);
	long_value[100000] = '\0';
	memset(over, 'o', 100001);
	over[100001] = '\0';
	tu_spawn(&prod, argv_p, NULL, false, false, true);
	tu_track(prod.pid);
	{
		size_t n;
		char *s = tu_read_until(prod.err_fd, "as producer", DEADLINE_MS, &n);
		EXPECT(s != NULL, "the producer did not attach");
		free(s);
	}
	tr_run_free(&t, 0, NULL, CTL, "--config", bin, "send", "hello", "", "tab\there", "caf\xc3\xa9",
	            "\x01\xff", NULL);
	tr_run_free_bin(&t, 0, "\0\0\0\x02hi\0\0\0\0", 10, CTL, "--config", bin, "send", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", line, "send", "one", "two\nlines", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "dump", NULL);
	tr_check(&t);
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--config", bin, "send", long_value, NULL});
	EXPECT(!strcmp(r.out, "published 1, last seq 7\n"), "send of 100000 bytes: '%s'", r.out);
	res_free(&r);
	r = run_checked(65, NULL, 0, (char *[]){(char *)CTL, "--config", bin, "send", over, "x", NULL});
	EXPECT(strstr(r.out, "published 1, last seq 8, rejected 1") && strstr(r.err, "max_record"),
	       "send of a record over max_record: stdout '%s', stderr '%s'", r.out, r.err);
	res_free(&r);
	kill(prod.pid, SIGTERM);
	st = tu_wait(prod.pid, DEADLINE_MS);
	tu_untrack(prod.pid);
	EXPECT(tu_exit_code(st) == 0, "the producer exited %d", tu_exit_code(st));
	close(prod.err_fd);

	/* every record as it was sent */
	sb_add(&want, "", 0);
	sb_binary(&want, "hello", 5);
	sb_binary(&want, "", 0);
	sb_binary(&want, "tab\there", 8);
	sb_binary(&want, "caf\xc3\xa9", 5);
	sb_binary(&want, "\x01\xff", 2);
	sb_binary(&want, "hi", 2);
	sb_binary(&want, "", 0);
	sb_binary(&want, long_value, 100000);
	sb_binary(&want, "x", 1);
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", qpath, "export", NULL});
	EXPECT(r.out_len == want.len && !memcmp(r.out, want.s, want.len),
	       "the queue holds %zu bytes of records, not the %zu sent", r.out_len, want.len);
	res_free(&r);
	free(want.s);
	free(argv_p[0]);
	free(long_value);
	free(over);
	free(line);
	free(bin);
	free(cfg);
	free(sock);
}

/* ---- repair: a damaged file salvaged ---- */

/*
 * Ten int records, consumer a at 2; repair refuses while the producer is
 * attached (69, naming it).  Then a byte of record 5's payload flipped in
 * the ring (mmapq_format.h: frames of 16 bytes from the ring's start, the
 * payload after the 8-byte frame header).  dump and export print what
 * comes before it and name record 5 and mmapqctl repair (65), a consumer b
 * gets 2 to 4 and stops there (65); repair salvages: the records up to the damage are
 * kept, the rest reported (status, metrics), and consumer a gets them; a
 * repair of the intact file finds it intact and changes nothing but the
 * floor's seqlock counter.
 */
static void test_repair(void)
{
	struct transcript t = {.group = "repair"};
	char *cfg = write_cfg("c.ini", "[queue]\nsize = 4K\nmax_record = 64\n[consumer]\noutput = stdout\n");
	/* the producer that holds the file says when it has attached */
	char *debug = write_cfg("debug.ini", "[queue]\nsize = 4K\nmax_record = 64\n[log]\nlevel = debug\n");
	char *argv_p[] = {tu_bin("mmapq-producer"), "--config", debug, "--queue", qpath, NULL};
	off_t at = MMAPQ_HEADER_SIZE + 5 * 16 + 8;
	struct tu_proc prod;
	struct mmapq_status st;
	struct res r;
	char *before, *want, c;
	size_t blen;
	int fd, code;

	tr_run_free(&t, 0, "0 1 2 3 4 5 6 7 8 9\n", P, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--name", "a", "--count", "2", NULL);
	/* the file in use: refused, the producer named (before the damage:
	 * the producer's attach, alone, would salvage the damaged file
	 * itself, its consumer b's cursor on the damaged record) */
	tu_spawn(&prod, argv_p, NULL, true, false, true);
	tu_track(prod.pid);
	{
		size_t n;
		char *s = tu_read_until(prod.err_fd, "as producer", DEADLINE_MS, &n);
		EXPECT(s != NULL, "the producer did not attach");
		free(s);
	}
	before = file_or_die(qpath, &blen);
	r = tr_run(&t, 69, NULL, CTL, "--config", cfg, "--queue", qpath, "repair", NULL);
	want = tu_xasprintf("pid %d", (int)prod.pid);
	EXPECT(strstr(r.err, want) && strstr(r.err, "producer"), "repair in use: '%s'", r.err);
	free(want);
	res_free(&r);
	EXPECT(file_same(qpath, before, blen), "a refused repair changed the file");
	free(before);
	close(prod.in_fd);
	code = tu_exit_code(tu_wait(prod.pid, DEADLINE_MS));
	tu_untrack(prod.pid);
	close(prod.err_fd);
	EXPECT(code == 0, "the producer exited %d", code);
	fd = open(qpath, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0 && pread(fd, &c, 1, at) == 1, "cannot read %s: %s", qpath, strerror(errno));
	EXPECT(c == 5, "byte %lld of %s is %d, not record 5's value", (long long)at, qpath, c);
	c ^= 0x40;
	EXPECT(pwrite(fd, &c, 1, at) == 1, "cannot damage %s: %s", qpath, strerror(errno));
	close(fd);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", qpath, "dump", NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", qpath, "--json", "dump", NULL);
	tr_run_free(&t, 65, NULL, CTL, "--queue", qpath, "export", NULL);
	/* a consumer that registers now (at 2) gets the records before it,
	 * and stops there */
	r = run_checked(65, NULL, 0, (char *[]){(char *)C, "--config", cfg, "--queue", qpath, "--name",
	                                        "b", "--count", "8", NULL});
	EXPECT(!strcmp(r.out, "2\n3\n4\n"), "the consumer of the damaged file printed '%s', stderr '%s'",
	       r.out, r.err);
	res_free(&r);

	/* salvaged: 2..4 kept, 5..9 dropped */
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "repair", NULL);
	st = tu_queue_status(qpath);
	EXPECT(st.head == 2 && st.tail == 5 && st.salvage.count == 1 && st.salvage.above_from == 5 &&
	       st.salvage.above_to == 10 && st.salvage.dropped_bytes == 5 * 16 && st.clean,
	       "after the repair: head %" PRIu64 " tail %" PRIu64 " salvages %" PRIu64 " above [%" PRIu64
	       ", %" PRIu64 ") bytes %" PRIu64, st.head, st.tail, st.salvage.count,
	       st.salvage.above_from, st.salvage.above_to, st.salvage.dropped_bytes);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "status", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "--json", "status", NULL);
	r = run_checked(0, NULL, 0, (char *[]){(char *)CTL, "--queue", qpath, "metrics", NULL});
	want = tu_xasprintf("mmapq_salvages_total{queue=\"%s\"} 1\n", qpath);
	EXPECT(strstr(r.out, want), "metrics after a salvage: %s", r.out);
	free(want);
	want = tu_xasprintf("mmapq_last_salvage_dropped_records{queue=\"%s\"} 5\n", qpath);
	EXPECT(strstr(r.out, want), "metrics after a salvage: %s", r.out);
	free(want);
	res_free(&r);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--name", "a", "--count", "3", NULL);

	/* intact: said, and nothing changed but the floor's seqlock counter */
	tr_run_free(&t, 0, "10 11\n", P, "--config", cfg, "--queue", qpath, NULL);
	before = file_or_die(qpath, &blen);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "repair", NULL);
	{
		size_t n;
		char *now = file_or_die(qpath, &n);
		size_t gen = offsetof(struct mmapq_header, floor.gen);

		EXPECT(n == blen && blen > gen + 8, "the file changed size");
		memcpy(now + gen, before + gen, 8);
		EXPECT(!memcmp(now, before, blen), "a repair of an intact file changed it");
		free(now);
	}
	free(before);
	tr_run_free(&t, 0, NULL, CTL, "--queue", qpath, "dump", NULL);
	tr_check(&t);
	free(argv_p[0]);
	free(debug);
	free(cfg);
}

/* ---- consumer names starting with '-' ---- */

/* The consumers registered in the queue file path (observer), in table
 * order: how many. */
static int consumers_in(const char *path, struct mmapq_consumer_status *cs)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq *q;
	int n;

	EXPECT(mmapq_open(&p, &q, NULL) == 0, "%s: cannot open as observer", path);
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	mmapq_close(q);
	EXPECT(n >= 0 && n <= (int)MMAPQ_CONSUMERS_MAX, "%s: mmapq_consumers %d", path, n);
	return n;
}

/*
 * No consumer may take a name starting with '-' (--name, --named-instance,
 * [consumer:NAME]); one an older version registered stays in the file,
 * shown, and removable with `consumer remove -- NAME`.
 */
static void test_dash_name(void)
{
	struct transcript t = {.group = "dash_name"};
	char *cfg = write_cfg("c.ini", "[queue]\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n");
	char *bad = write_cfg("bad.ini", "[queue]\nsize = 64K\nmax_record = 1K\n[consumer:-x]\noutput = stdout\n");
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	int fd;

	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--name", "-x", NULL);
	tr_run_free(&t, 64, NULL, C, "--config", cfg, "--queue", qpath, "--named-instance", "q1:-x", NULL);
	tr_run_free(&t, 78, NULL, C, "--config", bad, "--queue", qpath, NULL);
	tr_run_free(&t, 0, "1 2 3\n", P, "--config", cfg, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, C, "--config", cfg, "--queue", qpath, "--name", "zz", "--count", "1", NULL);
	/* as an older version would have registered it: "zz" becomes "-x" */
	EXPECT(consumers_in(qpath, cs) == 1 && cs[0].index == 0, "zz is not entry 0");
	fd = open(qpath, O_WRONLY | O_CLOEXEC);
	EXPECT(fd >= 0 && pwrite(fd, "-x", 2, (off_t)offsetof(struct mmapq_header, consumers[0].name)) == 2,
	       "cannot rename zz: %s", strerror(errno));
	close(fd);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "--json", "consumers", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "consumer", "remove", "-x", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "consumer", "remove", "--", "-x", NULL);
	tr_run_free(&t, 67, NULL, CTL, "--config", cfg, "--queue", qpath, "consumer", "remove", "--", "-x", NULL);
	tr_run_free(&t, 64, NULL, CTL, "--config", cfg, "--queue", qpath, "consumer", "remove", "a/b", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", cfg, "--queue", qpath, "--json", "consumers", NULL);
	tr_check(&t);
	free(cfg);
	free(bad);
}

/* ---- observers read any geometry; recreate changes any -------------------- */

/*
 * A file made with size 64K and max_consumers 2, shown by status, dump,
 * consumers and metrics under configurations of another max_consumers,
 * and of another size, max_record and format: the observers take the
 * file as it is.  The daemons still refuse it (65), naming recreate.
 */
static void test_any_geometry(void)
{
	struct transcript t = {.group = "any_geometry"};
	char *c2 = write_cfg("c2.ini", "[queue]\nsize = 64K\nmax_record = 1K\nmax_consumers = 2\n[consumer]\noutput = stdout\n");
	char *c4 = write_cfg("c4.ini", "[queue]\nsize = 64K\nmax_record = 1K\nmax_consumers = 4\n");
	char *other = write_cfg("other.ini", "[queue]\nsize = 128K\nmax_record = 32\nformat = line\n"
	                        "max_consumers = 4\n");
	char *cfgs[2] = {c4, other};

	tr_run_free(&t, 0, "1 2 3\n", P, "--config", c2, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c2, "--queue", qpath, "--name", "a", "--count", "1", NULL);
	for (int i = 0; i < 2; i++) {
		struct res r;
		char *want;

		tr_run_free(&t, 0, NULL, CTL, "--config", cfgs[i], "--queue", qpath, "status", NULL);
		tr_run_free(&t, 0, NULL, CTL, "--config", cfgs[i], "--queue", qpath, "dump", NULL);
		tr_run_free(&t, 0, NULL, CTL, "--config", cfgs[i], "--queue", qpath, "--json", "consumers", NULL);
		/* metrics: its timestamps vary, the table's size does not */
		r = run_io(OUT_CAPTURE, NULL, 0, DEADLINE_MS,
		           (char *[]){(char *)CTL, "--config", cfgs[i], "--queue", qpath, "metrics", NULL});
		want = tu_xasprintf("mmapq_consumers_max{queue=\"%s\"} 2\n", qpath);
		EXPECT(r.code == 0 && strstr(r.out, want), "metrics under %s: exit %d, stderr '%s'", cfgs[i],
		       r.code, r.err);
		free(want);
		res_free(&r);
	}
	tr_run_free(&t, 65, "4\n", P, "--config", c4, "--queue", qpath, NULL);
	tr_run_free(&t, 65, NULL, C, "--config", other, "--queue", qpath, NULL);
	tr_check(&t);
	free(c2);
	free(c4);
	free(other);
}

/*
 * max_consumers changes (4 -> 2 -> 8 -> 2) with consumers a, b, c
 * registered at different places among 6 records: recreate refuses while
 * they do not fit (65, naming them), else rebuilds the table at the new
 * size with each consumer where it was among the records and its counters
 * (pid, attaches, times, recoveries) as they were; b then goes on where it
 * was.
 */
static void test_recreate_consumers(void)
{
	struct transcript t = {.group = "recreate_consumers"};
	char *c4 = write_cfg("c4.ini", "[queue]\nsize = 64K\nmax_record = 1K\nmax_consumers = 4\n[consumer]\noutput = stdout\n");
	char *c2 = write_cfg("c2.ini", "[queue]\nsize = 64K\nmax_record = 1K\nmax_consumers = 2\n[consumer]\noutput = stdout\n");
	char *c8 = write_cfg("c8.ini", "[queue]\nsize = 64K\nmax_record = 1K\n[consumer]\noutput = stdout\n");
	struct mmapq_consumer_status before[MMAPQ_CONSUMERS_MAX], after[MMAPQ_CONSUMERS_MAX];
	char *bytes, *again;
	size_t len, len2;
	int n;

	tr_run_free(&t, 0, "1 2 3 4 5 6\n", P, "--config", c4, "--queue", qpath, NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c4, "--queue", qpath, "--name", "a", "--count", "1", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c4, "--queue", qpath, "--name", "b", "--count", "2", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c4, "--queue", qpath, "--name", "b", "--count", "1", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c4, "--queue", qpath, "--name", "c", "--count", "2", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", c4, "--queue", qpath, "--json", "consumers", NULL);
	n = consumers_in(qpath, before);
	EXPECT(n == 3, "%d consumers registered, want 3", n);

	/* three do not fit in two: named, the file untouched */
	bytes = tu_read_file(qpath, &len);
	tr_run_free(&t, 65, NULL, CTL, "--config", c2, "--queue", qpath, "recreate", NULL);
	again = tu_read_file(qpath, &len2);
	EXPECT(bytes && again && len == len2 && !memcmp(bytes, again, len), "a refused recreate changed the file");
	free(bytes);
	free(again);

	/* into eight: each where it was (the oldest record kept, 1, is 0
	 * now), with its counters */
	tr_run_free(&t, 0, NULL, CTL, "--config", c8, "--queue", qpath, "recreate", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", c8, "--queue", qpath, "--json", "consumers", NULL);
	EXPECT(consumers_in(qpath, after) == n && tu_queue_status(qpath).max_consumers == 8,
	       "the consumers were not carried over into a table of 8");
	for (int i = 0; i < n; i++) {
		EXPECT(!strcmp(after[i].name, before[i].name) && after[i].position == before[i].position - 1 &&
		       after[i].pid == before[i].pid && after[i].start_usec == before[i].start_usec &&
		       after[i].registered_usec == before[i].registered_usec &&
		       after[i].recoveries == before[i].recoveries && after[i].attaches == before[i].attaches,
		       "consumer %d ('%s') not carried over as it was: position %" PRIu64 " (was %" PRIu64
		       "), attaches %" PRIu64 " (was %" PRIu64 ")", i, before[i].name, after[i].position,
		       before[i].position, after[i].attaches, before[i].attaches);
	}
	/* b goes on where it was: the records 5 and 6 */
	tr_run_free(&t, 0, NULL, C, "--config", c8, "--queue", qpath, "--name", "b", "--count", "2", NULL);
	/* without c, two fit in two */
	tr_run_free(&t, 0, NULL, CTL, "--config", c8, "--queue", qpath, "consumer", "remove", "c", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", c2, "--queue", qpath, "recreate", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", c2, "--queue", qpath, "--json", "consumers", NULL);
	tr_run_free(&t, 0, NULL, C, "--config", c2, "--queue", qpath, "--name", "a", "--count", "5", NULL);
	tr_check(&t);
	free(c2);
	free(c4);
	free(c8);
}

static int producers_in(const char *path, struct mmapq_producer_status *ps)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq *q;
	int n;

	EXPECT(mmapq_open(&p, &q, NULL) == 0, "%s: cannot open as observer", path);
	n = mmapq_producers(q, ps, MMAPQ_PRODUCERS_MAX);
	mmapq_close(q);
	EXPECT(n >= 0 && n <= (int)MMAPQ_PRODUCERS_MAX, "%s: mmapq_producers %d", path, n);
	return n;
}

/*
 * recreate_producers: two named producers publish; a max_producers smaller
 * than the names registered is refused (65) naming them, the file
 * untouched; another size and a table of two carry both over with their
 * counters (what each published, its registration time, last pid, start
 * time, attaches) and no name of recreate's own; alpha then counts on.
 */
static void test_recreate_producers(void)
{
	struct transcript t = {.group = "recreate_producers"};
	char *p4 = write_cfg("p4.ini", "[queue]\nsize = 4K\nmax_record = 8\n[consumer]\noutput = stdout\n");
	char *p1 = write_cfg("p1.ini", "[queue]\nsize = 4K\nmax_record = 8\nmax_producers = 1\n[consumer]\noutput = stdout\n");
	char *p2 = write_cfg("p2.ini", "[queue]\nsize = 8K\nmax_record = 8\nmax_producers = 2\n[consumer]\noutput = stdout\n");
	struct mmapq_producer_status before[MMAPQ_PRODUCERS_MAX], after[MMAPQ_PRODUCERS_MAX];
	char *bytes;
	size_t len;
	int n;

	tr_run_free(&t, 0, "1 2 3\n", P, "--config", p4, "--queue", qpath, "--name", "alpha", NULL);
	tr_run_free(&t, 0, "4 5\n", P, "--config", p4, "--queue", qpath, "--name", "beta", NULL);
	tr_run_free(&t, 0, "6\n", P, "--config", p4, "--queue", qpath, "--name", "alpha", NULL);
	n = producers_in(qpath, before);
	EXPECT(n == 2 && before[0].published == 4 && before[1].published == 2 &&
	       before[0].attaches == 2 && before[0].registered_usec && before[1].registered_usec,
	       "%d producers registered, want alpha (4 published) and beta (2)", n);

	/* two do not fit in one: named, the file untouched */
	bytes = tu_read_file(qpath, &len);
	tr_run_free(&t, 65, NULL, CTL, "--config", p1, "--queue", qpath, "recreate", NULL);
	EXPECT(bytes && file_same(qpath, bytes, len), "a refused recreate changed the file");
	free(bytes);

	tr_run_free(&t, 0, NULL, CTL, "--config", p2, "--queue", qpath, "recreate", NULL);
	tr_run_free(&t, 0, NULL, CTL, "--config", p2, "--queue", qpath, "status", NULL);
	EXPECT(producers_in(qpath, after) == n && tu_queue_status(qpath).max_producers == 2,
	       "the producers were not carried over into a table of 2");
	for (int i = 0; i < n; i++) {
		EXPECT(!strcmp(after[i].name, before[i].name) && after[i].published == before[i].published &&
		       after[i].registered_usec == before[i].registered_usec &&
		       after[i].last_pid == before[i].last_pid && after[i].start_usec == before[i].start_usec &&
		       after[i].attaches == before[i].attaches && after[i].dropped == before[i].dropped &&
		       after[i].bad_input == before[i].bad_input &&
		       after[i].recoveries == before[i].recoveries &&
		       after[i].blocked_total_usec == before[i].blocked_total_usec && !after[i].attached,
		       "producer %d ('%s') not carried over as it was: published %" PRIu64 " (was %" PRIu64
		       "), registered %" PRIu64 " (was %" PRIu64 "), attaches %" PRIu64 " (was %" PRIu64 ")",
		       i, before[i].name, after[i].published, before[i].published, after[i].registered_usec,
		       before[i].registered_usec, after[i].attaches, before[i].attaches);
	}
	/* alpha counts on from what it had; every record is there */
	tr_run_free(&t, 0, "7\n", P, "--config", p2, "--queue", qpath, "--name", "alpha", NULL);
	EXPECT(producers_in(qpath, after) == n && after[0].published == 5 && after[0].attaches == 3,
	       "alpha: published %" PRIu64 ", attaches %" PRIu64 "; want 5 and 3", after[0].published,
	       after[0].attaches);
	tr_run_free(&t, 0, NULL, C, "--config", p2, "--queue", qpath, "--count", "7", NULL);
	tr_check(&t);
	free(p1);
	free(p2);
	free(p4);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"help", test_help},
		{"version", test_version},
		{"usage", test_usage},
		{"usage_names_option", test_usage_names_option},
		{"config", test_config},
		{"default_config_missing", test_default_config_missing},
		{"dropins", test_dropins},
		{"instance", test_instance},
		{"int_queue", test_int_queue},
		{"line_queue", test_line_queue},
		{"json_utf8_roundtrip", test_json_utf8_roundtrip},
		{"bad_input", test_bad_input},
		{"bad_queue", test_bad_queue},
		{"role_taken", test_role_taken},
		{"cannot_create", test_cannot_create},
		{"read_only_dir", test_read_only_dir},
		{"io_error", test_io_error},
		{"recreate", test_recreate},
		{"recreate_legacy", test_recreate_legacy},
		{"dash_name", test_dash_name},
		{"any_geometry", test_any_geometry},
		{"recreate_consumers", test_recreate_consumers},
		{"recreate_producers", test_recreate_producers},
		{"binary_queue", test_binary_queue},
		{"send_records", test_send_records},
		{"repair", test_repair},
		{"producers", test_producers_queue},
	};

	signal(SIGPIPE, SIG_IGN);
	atexit(tu_kill_tracked); /* a case that fails leaves no daemon behind */
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
