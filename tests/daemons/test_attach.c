/* SPDX-License-Identifier: MIT */
/*
 * test_attach -- how the programs open the queue and hold it mapped
 * (daemons/runtime/attach.c: the attach, the SIGBUS guard): the real daemons
 * and mmapqctl against a queue file that is attacked while they use it, and
 * against hostile file systems.
 *
 * Cases:
 *   sigbus_consumer_waiting   file truncated to 0 while the consumer waits
 *   sigbus_producer_attached  file truncated to 0 while the producer is attached
 *   sigbus_producer_slots     truncated to the header: the producer's next
 *                             put faults; the consumer waiting on the header
 *                             is untouched and stops cleanly
 *   sigbus_consumer_reading   truncated to the header with records pending:
 *                             the consumer's read of a frame faults
 *   ctl_truncated_extended    mmapqctl status/dump on a file one frame short,
 *                             header only, one byte too long
 *   extended_while_mapped     bytes appended while both daemons run
 *   deleted_while_attached    the file unlinked with both daemons attached
 *   replaced_while_attached   another valid queue renamed over it
 *   stale_publish_after_drain records published into a deleted file after
 *                             the consumer drained it (it must stay until
 *                             the producer has left)
 *   header_zeroed_while_mapped the header overwritten with zeros while a
 *                             stream flows: no stall
 *   permission_denied         as nobody: a root 0600/0644 file, a directory
 *                             that is not writable
 *   enospc                    creating a queue on a full (64 KiB) tmpfs
 *   read_only_fs              a read-only tmpfs, empty and holding a queue
 *                             without its lock file
 *   special_files_ctl         FIFO, directory, device, dangling symlink,
 *                             symlink to a valid queue: mmapqctl status/dump
 *   socket_at_path            a Unix socket at the path
 *   damaged_names_repair      a file marked clean whose positions are wrong:
 *                             both daemons exit 65 naming `mmapqctl repair`
 *   legacy_names_recreate     a file of format version 3: both daemons exit
 *                             65 naming `mmapqctl recreate`, the file untouched
 *   salvage_logged            a file not closed cleanly with a damaged frame:
 *                             the daemon that salvages it says which records
 *                             it dropped and which it kept
 *
 * What "survives" means everywhere: a documented exit code (65 bad queue
 * file, 73 cannot create or open), a message on stderr naming the file, no
 * death by a signal and so no core dump, and no hang: every wait has a
 * deadline, every case runs in a child of its own (its own process group,
 * killed as a whole afterwards: setup) with a deadline too.  Nothing sleeps.
 *
 * SIGBUS: the daemons install attach_sigbus_guard, which turns the fault on a
 * truncated mapping into "fatal: FILE was truncated or removed while mapped
 * (SIGBUS)" and _exit(65).
 *
 * Three cases hold the programs to what a naive version gets wrong:
 * records published into a deleted file after the consumer left, a stall
 * on a zeroed header, a socket at the path reported as an I/O error.
 *
 * Cases that need root powers (unshare(CLONE_NEWNS) + mount for a tiny or
 * read-only tmpfs, setuid(65534) for EACCES, mknod) skip (77) if they are
 * refused; the program exits 0 if nothing failed.  Mounts live in the case's
 * private mount namespace and disappear with it.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"
#include "testutil.h"

#define CASE_TIMEOUT_MS 30000 /* one case, all included */
#define EXIT_MS         5000  /* a program that should exit */
/* The sentinel of the variadic argument lists below: NULL may be a plain 0 */
#define END             ((char *)NULL)

extern char **environ;

static char *g_dir;        /* the case's scratch directory (0755: nobody must reach it) */
static char *g_q;          /* the queue file the case is about (dumped on failure) */
static char *g_cfg;        /* stdout output, debug logging (attach is announced) */

#define EXPECT(cond, ...) TU_EXPECT(g_q, cond, __VA_ARGS__)

static void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void note(const char *fmt, ...)
{
	va_list ap;

	fputs("test_attach: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static char *write_cfg(const char *name, const char *text)
{
	char *p = tu_write_in(g_dir, name, text);

	if (chmod(p, 0644) < 0) /* readable by the other user of permission_denied */
		tu_die("chmod config");
	return p;
}

/* "1\n2\n...n\n" for from..to */
static char *numbers(unsigned from, unsigned to, char sep)
{
	size_t cap = (size_t)(to - from + 1) * 12 + 1, len = 0;
	char *s = malloc(cap);

	if (!s)
		tu_die("malloc");
	for (unsigned i = from; i <= to; i++)
		len += (size_t)snprintf(s + len, cap - len, "%u%c", i, sep);
	s[len] = '\0';
	return s;
}

/* ---- programs --------------------------------------------------------------- */

struct sbuf {
	char *s;
	size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *p, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		if (!b->s)
			tu_die("realloc");
	}
	memcpy(b->s + b->len, p, n);
	b->len += n;
	b->s[b->len] = '\0';
}

struct prog {
	const char *name;
	pid_t pid;
	int pidfd, in, out, err;
	struct sbuf o, e;  /* everything read from stdout and stderr so far */
	bool exited;
	int status;
	uint64_t exit_ms;  /* when the exit was seen */
};

/* The child of a privilege-dropping spawn reports a failed drop with this
 * code (and the exec failing as nobody with 126): the case is skipped. */
#define DROP_FAILED TU_NOT_NOBODY
#define DROP_NOEXEC 126

/*
 * Start $MMAPQ_BIN_DIR/name with argv (NULL-terminated, without argv[0]);
 * stdout and stderr are pipes, stdin a pipe if pipe_in (else inherited).
 * as_nobody: the child drops to uid/gid 65534 with no supplementary
 * groups before exec (so EACCES really happens although we are root).
 */
static struct prog start_v(bool as_nobody, bool pipe_in, const char *name, char **args)
{
	struct prog p = {.name = name, .in = -1, .out = -1, .err = -1, .pidfd = -1};
	char *argv[24];
	int n = 0;

	argv[n++] = tu_bin(name);
	while (args && *args && n < 23)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (!as_nobody) {
		struct tu_proc tp;
		tu_spawn(&tp, argv, NULL, pipe_in, true, true);
		p.pid = tp.pid;
		p.in = tp.in_fd;
		p.out = tp.out_fd;
		p.err = tp.err_fd;
	} else {
		int in[2] = {-1, -1}, out[2], err[2];
		if ((pipe_in && pipe2(in, O_CLOEXEC) < 0) || pipe2(out, O_CLOEXEC) < 0 ||
		    pipe2(err, O_CLOEXEC) < 0)
			tu_die("pipe2");
		p.pid = fork();
		if (p.pid < 0)
			tu_die("fork");
		if (p.pid == 0) {
			int r;

			if (pipe_in)
				dup2(in[0], 0);
			dup2(out[1], 1);
			dup2(err[1], 2);
			r = tu_become_nobody();
			if (r < 0) {
				fprintf(stderr, "privdrop: %s\n", strerror(-r));
				_exit(DROP_FAILED);
			}
			execve(argv[0], argv, environ);
			fprintf(stderr, "privdrop: exec %s as nobody: %s\n", argv[0], strerror(errno));
			_exit(DROP_NOEXEC);
		}
		if (pipe_in) {
			close(in[0]);
			p.in = in[1];
		}
		close(out[1]);
		close(err[1]);
		p.out = out[0];
		p.err = err[0];
	}
	free(argv[0]);
	p.pidfd = (int)syscall(SYS_pidfd_open, p.pid, 0);
	if (p.pidfd < 0)
		tu_die("pidfd_open");
	return p;
}

#define MAX_ARGS 20
static struct prog start(bool as_nobody, bool pipe_in, const char *name, ...)
{
	char *args[MAX_ARGS + 1];
	va_list ap;
	int n = 0;

	va_start(ap, name);
	while (n < MAX_ARGS && (args[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	args[n] = NULL;
	return start_v(as_nobody, pipe_in, name, args);
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/*
 * Read the program's stdout and stderr until: out_needle appears in its
 * stdout, or err_needle in its stderr, or (both NULL) it has exited and
 * closed both; or the deadline.  true when the condition was met.
 */
static bool pump(struct prog *p, int timeout_ms, const char *out_needle, const char *err_needle)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct pollfd pf[3] = {
			{.fd = p->out, .events = POLLIN},
			{.fd = p->err, .events = POLLIN},
			{.fd = p->exited ? -1 : p->pidfd, .events = POLLIN},
		};
		uint64_t now = tu_now_ms();
		bool done_io = p->exited && p->out < 0 && p->err < 0;

		if (out_needle && p->o.s && strstr(p->o.s, out_needle))
			return true;
		if (err_needle && p->e.s && strstr(p->e.s, err_needle))
			return true;
		if (done_io)
			return !out_needle && !err_needle;
		if (now >= deadline)
			return false;
		if (poll(pf, 3, (int)(deadline - now)) < 0) {
			if (errno == EINTR)
				continue;
			tu_die("poll");
		}
		for (int i = 0; i < 2; i++) {
			int *fd = i ? &p->err : &p->out;
			char chunk[4096];
			ssize_t k;

			if (*fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			k = read(*fd, chunk, sizeof(chunk));
			if (k < 0 && errno == EINTR)
				continue;
			if (k <= 0)
				close_fd(fd);
			else
				sb_add(i ? &p->e : &p->o, chunk, (size_t)k);
		}
		if (!p->exited && (pf[2].revents & POLLIN)) {
			pid_t r = waitpid(p->pid, &p->status, WNOHANG);
			if (r == p->pid) {
				p->exited = true;
				p->exit_ms = tu_now_ms();
				close_fd(&p->pidfd);
			}
		}
	}
}

static const char *describe(const struct prog *p)
{
	static char buf[128];

	if (!p->exited)
		snprintf(buf, sizeof(buf), "still running");
	else if (WIFEXITED(p->status))
		snprintf(buf, sizeof(buf), "exit %d", WEXITSTATUS(p->status));
	else if (WIFSIGNALED(p->status))
		snprintf(buf, sizeof(buf), "killed by signal %d (%s)%s", WTERMSIG(p->status),
		         strsignal(WTERMSIG(p->status)), WCOREDUMP(p->status) ? ", core dumped" : "");
	else
		snprintf(buf, sizeof(buf), "status 0x%x", (unsigned)p->status);
	return buf;
}

static const char *err_text(const struct prog *p)
{
	return p->e.s ? p->e.s : "";
}

static const char *out_text(const struct prog *p)
{
	return p->o.s ? p->o.s : "";
}

static void prog_free(struct prog *p)
{
	close_fd(&p->in);
	close_fd(&p->out);
	close_fd(&p->err);
	close_fd(&p->pidfd);
	free(p->o.s);
	free(p->e.s);
	memset(&p->o, 0, sizeof(p->o));
	memset(&p->e, 0, sizeof(p->e));
}

/* Wait for the exit, then check: exited normally with code, never by a
 * signal (so no core), stderr names every needle (NULL-terminated). */
static void expect_exit(struct prog *p, int timeout_ms, int code, ...)
{
	va_list ap;
	const char *needle;

	EXPECT(pump(p, timeout_ms, NULL, NULL), "%s (pid %d) did not exit within %d ms; stderr so far: %s",
	       p->name, (int)p->pid, timeout_ms, err_text(p));
	if (p->status >= 0 && WIFEXITED(p->status) &&
	    (WEXITSTATUS(p->status) == DROP_FAILED || WEXITSTATUS(p->status) == DROP_NOEXEC) &&
	    strstr(err_text(p), "privdrop:"))
		tu_skip("cannot run as uid %d: %s", TU_NOBODY, err_text(p));
	EXPECT(!WIFSIGNALED(p->status), "%s crashed: %s; stderr: %s", p->name, describe(p), err_text(p));
	EXPECT(WIFEXITED(p->status) && WEXITSTATUS(p->status) == code,
	       "%s: %s, expected exit %d; stderr: %s", p->name, describe(p), code, err_text(p));
	va_start(ap, code);
	while ((needle = va_arg(ap, const char *)))
		EXPECT(strstr(err_text(p), needle), "%s (exit %d): stderr does not mention '%s': %s", p->name,
		       code, needle, err_text(p));
	va_end(ap);
}

/* Feed stdin (then EOF) to a program started with pipe_in. */
static void feed(struct prog *p, const char *text, bool then_close)
{
	if (p->in >= 0 && text)
		(void)tu_write_all(p->in, text, strlen(text)); /* EPIPE if it died: SIGPIPE ignored */
	if (then_close)
		close_fd(&p->in);
}

/* The same for input larger than a pipe holds: a child of ours writes it
 * (and may block doing so) while we read the other end of the stream. */
static void feed_async(struct prog *p, const char *text)
{
	pid_t pid = fork();

	if (pid < 0)
		tu_die("fork");
	if (pid == 0) {
		_exit(tu_write_all(p->in, text, strlen(text)) == 0 ? 0 : 1);
	}
	close_fd(&p->in);
}

/* Run to completion with stdin text (NULL: /dev/null-like EOF at once). */
#define RUN(nobody, in, name, ...)                                            \
	({                                                                    \
		struct prog _p = start(nobody, true, name, __VA_ARGS__, END); \
		feed(&_p, in, true);                                          \
		_p;                                                           \
	})

static struct prog start_consumer(const char *q, const char *count)
{
	struct prog c = count ? start(false, false, "mmapq-consumer", "--config", g_cfg, "--queue", q,
	                              "--count", count, END)
	                      : start(false, false, "mmapq-consumer", "--config", g_cfg, "--queue", q,
	                              END);
	EXPECT(pump(&c, EXIT_MS, NULL, "as consumer"), "the consumer did not attach (%s): %s",
	       describe(&c), err_text(&c));
	return c;
}

static struct prog start_producer(const char *q)
{
	struct prog p = start(false, true, "mmapq-producer", "--config", g_cfg, "--queue", q, END);
	EXPECT(pump(&p, EXIT_MS, NULL, "as producer"), "the producer did not attach (%s): %s",
	       describe(&p), err_text(&p));
	return p;
}

/* A producer that publishes text and exits 0. */
static void publish(const char *q, const char *text)
{
	struct prog p = RUN(false, text, "mmapq-producer", "--config", g_cfg, "--queue", q);
	expect_exit(&p, EXIT_MS, 0, END);
	prog_free(&p);
}

static bool still_running(struct prog *p)
{
	if (!p->exited && waitpid(p->pid, &p->status, WNOHANG) == p->pid) {
		p->exited = true;
		p->exit_ms = tu_now_ms();
	}
	return !p->exited;
}

/* SIGSTOP and wait until it really is stopped (it is our child). */
static void stop_prog(struct prog *p)
{
	int st;

	EXPECT(kill(p->pid, SIGSTOP) == 0, "SIGSTOP %s: %s", p->name, strerror(errno));
	EXPECT(waitpid(p->pid, &st, WUNTRACED) == p->pid && WIFSTOPPED(st),
	       "%s did not stop: %s", p->name, strerror(errno));
}

static uint64_t file_size(const char *path)
{
	struct stat st;

	EXPECT(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return (uint64_t)st.st_size;
}

/* head and tail read from a queue file through a descriptor (the file may
 * be gone from the directory). */
static void positions_of_fd(int fd, uint64_t *head, uint64_t *tail)
{
	const struct mmapq_header *h = mmap(NULL, sizeof(*h), PROT_READ, MAP_SHARED, fd, 0);

	EXPECT(h != MAP_FAILED, "mmap the old queue file: %s", strerror(errno));
	*head = __atomic_load_n(&h->floor.seq, __ATOMIC_ACQUIRE);
	*tail = __atomic_load_n(&h->producer.tail, __ATOMIC_ACQUIRE);
	munmap((void *)h, sizeof(*h));
}

/* Names in a directory other than . and .., joined by spaces ("" if empty). */
static char *dir_entries(const char *dir)
{
	struct sbuf b = {0};
	DIR *d = opendir(dir);
	struct dirent *e;

	EXPECT(d != NULL, "opendir %s: %s", dir, strerror(errno));
	sb_add(&b, "", 0);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
			sb_add(&b, e->d_name, strlen(e->d_name));
			sb_add(&b, " ", 1);
		}
	closedir(d);
	return b.s;
}

static char *slurp(const char *path, size_t *len)
{
	char *s = tu_read_file(path, len);

	EXPECT(s != NULL, "cannot read %s: %s", path, strerror(errno));
	return s;
}

/* ---- SIGBUS ------------------------------------------------------------------ */

static void expect_sigbus_exit(struct prog *p, const char *what)
{
	expect_exit(p, EXIT_MS, 65, g_q, END);
	EXPECT(strstr(err_text(p), "SIGBUS") || strstr(err_text(p), "truncated"),
	       "%s: the message does not say SIGBUS or truncated: %s", what, err_text(p));
}

static void case_sigbus_consumer_waiting(void)
{
	struct prog c = start_consumer(g_q, END);
	uint64_t t0;

	/* it waits on the empty queue (futex, 0.5 s slices); cut the file */
	EXPECT(truncate(g_q, 0) == 0, "truncate: %s", strerror(errno));
	t0 = tu_now_ms();
	expect_sigbus_exit(&c, "consumer waiting");
	note("consumer waiting: exit 65 %" PRIu64 " ms after the truncation", c.exit_ms - t0);
	prog_free(&c);
}

static void case_sigbus_producer_attached(void)
{
	struct prog p = start_producer(g_q);
	uint64_t t0;

	EXPECT(truncate(g_q, 0) == 0, "truncate: %s", strerror(errno));
	t0 = tu_now_ms();
	/* idle, it would find out within a second (status refresh); a record
	 * makes it touch the mapping at once */
	feed(&p, "1 2 3\n", false);
	expect_sigbus_exit(&p, "producer attached");
	note("producer attached: exit 65 %" PRIu64 " ms after the truncation", p.exit_ms - t0);
	prog_free(&p);
}

static void case_sigbus_producer_slots(void)
{
	struct prog c = start_consumer(g_q, END), p = start_producer(g_q);
	struct prog ctl;

	/* the header survives, the ring is gone */
	EXPECT(truncate(g_q, MMAPQ_HEADER_SIZE) == 0, "truncate: %s", strerror(errno));
	feed(&p, "1 2 3\n", false);
	expect_sigbus_exit(&p, "producer writing a frame");
	/* the consumer sleeps on the header, which is still there: it is not
	 * hurt, it just never gets a record; it stops cleanly on SIGTERM */
	EXPECT(still_running(&c), "the consumer died although its header is intact: %s; stderr: %s",
	       describe(&c), err_text(&c));
	EXPECT(kill(c.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_exit(&c, EXIT_MS, 0, END);
	EXPECT(c.o.len == 0, "the consumer printed records that were never published: '%s'", out_text(&c));
	/* whoever opens it now is told */
	ctl = RUN(false, NULL, "mmapqctl", "--queue", g_q, "status");
	expect_exit(&ctl, EXIT_MS, 65, g_q, "truncated", END);
	prog_free(&ctl);
	prog_free(&c);
	prog_free(&p);
}

static void case_sigbus_consumer_reading(void)
{
	struct prog c = start_consumer(g_q, "100");
	char *in = numbers(1, 50, ' ');

	/* stopped before anything is published; 50 records wait for it */
	stop_prog(&c);
	publish(g_q, in);
	EXPECT(truncate(g_q, MMAPQ_HEADER_SIZE) == 0, "truncate: %s", strerror(errno));
	EXPECT(kill(c.pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	expect_sigbus_exit(&c, "consumer reading a frame");
	EXPECT(c.o.len == 0, "the consumer printed '%s' from frames that are gone", out_text(&c));
	free(in);
	prog_free(&c);
}

static void case_ctl_truncated_extended(void)
{
	uint64_t size;
	struct {
		const char *what;
		int64_t delta; /* from the right size; INT64_MIN: header only */
		const char *needle;
	} sizes[] = {
		{"one frame short", -(int64_t)mmapq_frame_size(sizeof(int64_t)), "truncated"},
		{"header only", INT64_MIN, "truncated"},
		{"one byte extra", 1, "extended"},
	};

	publish(g_q, "1 2 3\n");
	size = file_size(g_q);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t len = sizes[i].delta == INT64_MIN ? MMAPQ_HEADER_SIZE : size + (uint64_t)sizes[i].delta;
		char lenstr[32];

		snprintf(lenstr, sizeof(lenstr), "is %" PRIu64 " bytes", len);
		EXPECT(truncate(g_q, (off_t)len) == 0, "truncate: %s", strerror(errno));
		for (int j = 0; j < 3; j++) {
			struct prog ctl = j == 0 ? RUN(false, NULL, "mmapqctl", "--queue", g_q, "status")
			                : j == 1 ? RUN(false, NULL, "mmapqctl", "--queue", g_q, "dump")
			                         : RUN(false, NULL, "mmapqctl", "--queue", g_q, "--json", "dump");
			expect_exit(&ctl, EXIT_MS, 65, g_q, sizes[i].needle, lenstr, END);
			EXPECT(ctl.o.len == 0, "%s: mmapqctl printed '%s' for a broken file", sizes[i].what,
			       out_text(&ctl));
			prog_free(&ctl);
		}
	}
}

/* ---- extended while mapped -------------------------------------------------- */

static void case_extended_while_mapped(void)
{
	struct prog c = start_consumer(g_q, END), p = start_producer(g_q), x;
	static const char zeros[4096];
	uint64_t before;
	int fd;

	feed(&p, "1 2 3\n", false);
	EXPECT(pump(&c, EXIT_MS, "3\n", NULL), "the consumer did not print 1..3: '%s'", out_text(&c));
	before = file_size(g_q);
	fd = open(g_q, O_WRONLY | O_APPEND | O_CLOEXEC);
	EXPECT(fd >= 0 && write(fd, zeros, sizeof(zeros)) == (ssize_t)sizeof(zeros), "append: %s",
	       strerror(errno));
	close(fd);

	/* every new open is refused: the size no longer matches the header */
	x = RUN(false, NULL, "mmapqctl", "--queue", g_q, "status");
	expect_exit(&x, EXIT_MS, 65, g_q, "extended", END);
	prog_free(&x);
	x = RUN(false, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 65, g_q, "extended", END);
	prog_free(&x);
	x = RUN(false, "9\n", "mmapq-producer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 65, g_q, "extended", END);
	prog_free(&x);

	/* the running pair maps only the original size: it keeps working */
	feed(&p, "4 5 6\n", true);
	EXPECT(pump(&c, EXIT_MS, "6\n", NULL), "after the extension the consumer printed only '%s'",
	       out_text(&c));
	expect_exit(&p, EXIT_MS, 0, END);
	EXPECT(kill(c.pid, SIGTERM) == 0, "kill: %s", strerror(errno));
	expect_exit(&c, EXIT_MS, 0, END);
	EXPECT(strcmp(out_text(&c), "1\n2\n3\n4\n5\n6\n") == 0, "consumer output '%s'", out_text(&c));
	EXPECT(file_size(g_q) == before + sizeof(zeros), "the file size changed again");
	note("running daemons kept working after the file grew by %zu bytes; new opens get 65",
	     sizeof(zeros));
	prog_free(&c);
	prog_free(&p);
}

/* ---- deleted or replaced while attached --------------------------------------- */

static void deleted_or_replaced(bool replace)
{
	struct prog c = start_consumer(g_q, END), p;
	char *first = numbers(1, 500, ' '), *second = numbers(501, 1000, ' ');
	char *want = numbers(1, 1000, '\n');
	uint64_t head, tail, t0;
	int oldfd;

	/* 1..500 delivered; 501..1000 published while the consumer is stopped,
	 * so they are still in the file when it goes */
	publish(g_q, first);
	EXPECT(pump(&c, EXIT_MS, "\n500\n", NULL), "the consumer did not print 1..500");
	stop_prog(&c);
	publish(g_q, second);
	p = start_producer(g_q);
	oldfd = open(g_q, O_RDONLY | O_CLOEXEC);
	EXPECT(oldfd >= 0, "open: %s", strerror(errno));
	if (replace) {
		/* a perfectly valid, empty queue of the same geometry */
		char *other = tu_path(g_dir, "other");
		publish(other, "");
		EXPECT(rename(other, g_q) == 0, "rename: %s", strerror(errno));
		free(other);
	} else {
		EXPECT(unlink(g_q) == 0, "unlink: %s", strerror(errno));
	}
	t0 = tu_now_ms();
	EXPECT(kill(c.pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));

	expect_exit(&p, EXIT_MS, 75, g_q, "deleted or replaced", END);
	note("producer: exit 75 %" PRIu64 " ms after the file was %s", p.exit_ms - t0,
	     replace ? "replaced" : "deleted");
	EXPECT(p.exit_ms - t0 <= 2500, "the producer took %" PRIu64 " ms to notice", p.exit_ms - t0);
	expect_exit(&c, EXIT_MS, 75, g_q, "deleted or replaced", END);
	note("consumer: exit 75 %" PRIu64 " ms after, having written out %zu bytes", c.exit_ms - t0,
	     c.o.len);
	EXPECT(strcmp(out_text(&c), want) == 0,
	       "records published before the %s were not all written out, in order, once: got %zu bytes,"
	       " want %zu", replace ? "replacement" : "deletion", c.o.len, strlen(want));
	positions_of_fd(oldfd, &head, &tail);
	EXPECT(head == 1000 && tail == 1000, "the old file ends with head %" PRIu64 " tail %" PRIu64
	       ", expected both 1000", head, tail);
	close(oldfd);
	free(first);
	free(second);
	free(want);
	prog_free(&c);
	prog_free(&p);
}

static void case_deleted_while_attached(void)
{
	deleted_or_replaced(false);
}

static void case_replaced_while_attached(void)
{
	deleted_or_replaced(true);
}

/*
 * The consumer notices a deleted file (every ~1 s); the producer notices on
 * its own ~1 s tick, and until then it may still publish into the deleted
 * file.  Those records must not be lost: the consumer stays until the
 * producer has left and drains what it published.  Made deterministic here
 * by stopping the producer across the consumer's check.
 */
static void case_stale_publish_after_drain(void)
{
	struct prog c = start_consumer(g_q, NULL), p = start_producer(g_q);
	uint64_t head, tail;
	char *want;
	int oldfd;

	feed(&p, "1 2 3\n", false);
	EXPECT(pump(&c, EXIT_MS, "3\n", NULL), "the consumer did not print 1..3: '%s'", out_text(&c));
	oldfd = open(g_q, O_RDONLY | O_CLOEXEC);
	EXPECT(oldfd >= 0, "open: %s", strerror(errno));
	stop_prog(&p);
	EXPECT(unlink(g_q) == 0, "unlink: %s", strerror(errno));
	/* today the consumer drains and exits about a second later; a consumer
	 * that waits for the producer to leave is fine too (deadline, no check) */
	pump(&c, 3000, NULL, NULL);
	/* input the producer reads after that */
	feed(&p, "4 5 6\n", false);
	EXPECT(kill(p.pid, SIGCONT) == 0, "SIGCONT: %s", strerror(errno));
	expect_exit(&p, EXIT_MS, 75, "deleted or replaced", END);
	expect_exit(&c, EXIT_MS, 75, "deleted or replaced", END);
	positions_of_fd(oldfd, &head, &tail);
	close(oldfd);
	want = numbers(1, (unsigned)tail, '\n');
	EXPECT(head == tail && !strcmp(out_text(&c), want),
	       "the producer published %" PRIu64 " record(s) into the deleted file after the"
	       " consumer had drained it and exited (head %" PRIu64 ", tail %" PRIu64 "): accepted and"
	       " lost.  Consumer output: '%s'", tail - head, head, tail, out_text(&c));
	free(want);
	prog_free(&c);
	prog_free(&p);
}

/*
 * The header overwritten with zeros while both daemons stream (as by `dd
 * conv=notrunc` of the wrong file, or a restore over the live file).  An
 * all-zero pthread_mutex_t is a valid but *process-private*, non-robust
 * mutex: an unlock in one process wakes a private futex key of its own,
 * never the other process sleeping on the lock, which would sleep there
 * indefinitely.  A lock attempt re-checks the header after a second, and
 * the daemons' once-a-second mmapq_check() notices it too.  It is a
 * race, made likely by a ring of 4 records and up to ROUNDS attempts.
 * Acceptable outcomes: everything delivered, or exit 65 naming the file;
 * never 2 s without progress.
 */
#define ZERO_ROUNDS 8
#define ZERO_N      100000u

/* false if the stream stalled (> 2 s without output) */
static bool zeroed_round(int round, const char *cfg4)
{
	static const char zero[MMAPQ_HEADER_SIZE];
	char name[32], *more = numbers(4, ZERO_N, ' '), last[32];
	struct prog c, p;
	bool ok = true;
	int fd;

	snprintf(name, sizeof(name), "queue%d", round);
	free(g_q);
	g_q = tu_path(g_dir, name);
	free(g_cfg);
	g_cfg = strdup(cfg4);
	c = start_consumer(g_q, END);
	p = start_producer(g_q);
	feed(&p, "1 2 3\n", false);
	EXPECT(pump(&c, EXIT_MS, "3\n", NULL), "the consumer did not print 1..3: '%s'", out_text(&c));
	fd = open(g_q, O_WRONLY | O_CLOEXEC);
	EXPECT(fd >= 0 && pwrite(fd, zero, sizeof(zero), 0) == (ssize_t)sizeof(zero),
	       "zero the header: %s", strerror(errno));
	close(fd);
	feed_async(&p, more);
	snprintf(last, sizeof(last), "\n%u\n", ZERO_N);
	for (;;) {
		size_t before = c.o.len;
		if (pump(&c, 2000, last, NULL)) {
			expect_exit(&p, EXIT_MS, 0, END);
			note("round %d: everything delivered over a zeroed header", round);
			break;
		}
		if (!still_running(&c)) {
			/* it stopped by itself: it must have said why */
			expect_exit(&c, EXIT_MS, 65, g_q, END);
			kill(p.pid, SIGTERM);
			EXPECT(pump(&p, 3000, NULL, NULL), "the producer did not stop on SIGTERM");
			EXPECT(!WIFSIGNALED(p.status), "producer: %s", describe(&p));
			note("round %d: consumer exit 65 after %zu output bytes", round, c.o.len);
			break;
		}
		if (c.o.len == before) {
			uint64_t head, tail;
			int rfd = open(g_q, O_RDONLY | O_CLOEXEC);
			EXPECT(rfd >= 0, "open: %s", strerror(errno));
			positions_of_fd(rfd, &head, &tail);
			close(rfd);
			fprintf(stderr, "test_attach: round %d: after the header was zeroed"
			        " the stream stalled for 2 s at %zu output bytes (head %" PRIu64 ", tail %"
			        PRIu64 ", producer %s).  A zero pthread_mutex_t is process-private: the"
			        " other process's unlock cannot wake a waiter.\n", round, c.o.len,
			        head, tail, still_running(&p) ? "running" : describe(&p));
			kill(p.pid, SIGTERM);
			kill(c.pid, SIGTERM);
			EXPECT(pump(&p, 3000, NULL, NULL) && pump(&c, 3000, NULL, NULL),
			       "the stalled daemons did not even stop on SIGTERM");
			ok = false;
			break;
		}
	}
	free(more);
	prog_free(&c);
	prog_free(&p);
	return ok;
}

static void case_header_zeroed_while_mapped(void)
{
	char *cfg4 = write_cfg("cap4.ini", "[queue]\nsize = 64\nmax_record = 8\n[consumer]\noutput = stdout\n"
	                                   "[log]\nlevel = debug\n");

	for (int round = 1; round <= ZERO_ROUNDS; round++)
		EXPECT(zeroed_round(round, cfg4), "a queue header zeroed under running daemons"
		       " stalls them (see above)");
	free(cfg4);
}

/* ---- permissions --------------------------------------------------------------- */

static void case_permission_denied(void)
{
	char *ro = tu_path(g_dir, "rodir"), *roq = tu_path(g_dir, "rodir/queue");
	char *before, *after, *left;
	size_t blen, alen;
	struct prog x;

	/* can nobody run our programs at all (the build tree may be private)? */
	x = RUN(true, NULL, "mmapqctl", "--version");
	expect_exit(&x, EXIT_MS, 0, END);
	prog_free(&x);

	publish(g_q, "1 2 3\n");
	EXPECT(chmod(g_q, 0600) == 0, "chmod: %s", strerror(errno));
	before = slurp(g_q, &blen);

	/* root's 0600 file: nobody can neither attach nor observe */
	x = RUN(true, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "Permission denied", END);
	prog_free(&x);
	x = RUN(true, "4\n", "mmapq-producer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "Permission denied", END);
	prog_free(&x);
	x = RUN(true, NULL, "mmapqctl", "--queue", g_q, "status");
	expect_exit(&x, EXIT_MS, 73, g_q, "Permission denied", END);
	prog_free(&x);

	/* 0644: the daemons need write access and are refused; the read-only
	 * observer works */
	EXPECT(chmod(g_q, 0644) == 0, "chmod: %s", strerror(errno));
	x = RUN(true, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "Permission denied", END);
	prog_free(&x);
	x = RUN(true, "4\n", "mmapq-producer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "Permission denied", END);
	prog_free(&x);
	x = RUN(true, NULL, "mmapqctl", "--queue", g_q, "dump");
	expect_exit(&x, EXIT_MS, 0, END);
	EXPECT(strcmp(out_text(&x), "0\t1\n1\t2\n2\t3\n") == 0, "mmapqctl dump as nobody: '%s'",
	       out_text(&x));
	prog_free(&x);
	after = slurp(g_q, &alen);
	EXPECT(alen == blen && memcmp(before, after, blen) == 0, "the refused opens modified %s", g_q);

	/* a new queue in a directory nobody may not write */
	EXPECT(mkdir(ro, 0755) == 0, "mkdir: %s", strerror(errno));
	free(g_q);
	g_q = strdup(roq);
	x = RUN(true, "1\n", "mmapq-producer", "--config", g_cfg, "--queue", roq);
	expect_exit(&x, EXIT_MS, 73, roq, "Permission denied", END);
	prog_free(&x);
	x = RUN(true, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", roq);
	expect_exit(&x, EXIT_MS, 73, roq, "Permission denied", END);
	prog_free(&x);
	left = dir_entries(ro);
	EXPECT(!*left, "files left in %s: %s", ro, left);
	free(left);
	free(before);
	free(after);
	free(ro);
	free(roq);
}

/* ---- file systems: a private mount namespace with a tmpfs ------------------------- */

static char *private_tmpfs(const char *name, const char *opts)
{
	char *mnt = tu_path(g_dir, name);

	if (mkdir(mnt, 0755) < 0)
		tu_die("mkdir");
	if (mount("tmpfs", mnt, "tmpfs", 0, opts) < 0)
		tu_skip("cannot mount a tmpfs (%s): %s", opts, strerror(errno));
	return mnt;
}

static void private_namespace(void)
{
	if (unshare(CLONE_NEWNS) < 0)
		tu_skip("unshare(CLONE_NEWNS): %s", strerror(errno));
	/* nothing we mount may propagate back to the host */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		tu_skip("making / private: %s", strerror(errno));
}

static void remount_ro(const char *mnt)
{
	if (mount(NULL, mnt, NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0 &&
	    mount("tmpfs", mnt, "tmpfs", MS_REMOUNT | MS_RDONLY, NULL) < 0)
		tu_skip("remount %s read-only: %s", mnt, strerror(errno));
}

static void case_enospc(void)
{
	char *mnt, *small, *big, *left;
	struct prog x;

	private_namespace();
	mnt = private_tmpfs("small", "size=64k,mode=0755");
	free(g_q);
	g_q = tu_path(mnt, "queue");
	/* 4096 + 131072 = 135168 bytes */
	big = write_cfg("big.ini", "[queue]\nsize = 128K\nmax_record = 1K\n[consumer]\noutput = stdout\n");
	x = RUN(false, "1\n", "mmapq-producer", "--config", big, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "No space left on device", END);
	prog_free(&x);
	x = RUN(false, NULL, "mmapq-consumer", "--config", big, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "No space left on device", END);
	prog_free(&x);
	free(big);
	left = dir_entries(mnt);
	EXPECT(!*left, "left behind on the full file system: %s", left);
	free(left);

	/* control: the same file system takes a queue that fits */
	small = write_cfg("small.ini", "[queue]\nsize = 256\nmax_record = 8\n[consumer]\noutput = stdout\n");
	x = RUN(false, "1 2 3\n", "mmapq-producer", "--config", small, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 0, END);
	prog_free(&x);
	x = RUN(false, NULL, "mmapq-consumer", "--config", small, "--queue", g_q, "--count", "3");
	expect_exit(&x, EXIT_MS, 0, END);
	EXPECT(strcmp(out_text(&x), "1\n2\n3\n") == 0, "consumer printed '%s'", out_text(&x));
	prog_free(&x);
	left = dir_entries(mnt);
	EXPECT(!strcmp(left, "queue queue.lock ") || !strcmp(left, "queue.lock queue "),
	       "in %s after the control: '%s' (want the queue and its lock file)", mnt, left);
	free(left);
	free(small);
	free(mnt);
}

static void case_read_only_fs(void)
{
	char *empty, *full, *left, *q_empty, *before, *after, *lock;
	size_t blen, alen;
	struct prog x;

	private_namespace();
	empty = private_tmpfs("ro-empty", "size=1m,mode=0755");
	full = private_tmpfs("ro-queue", "size=1m,mode=0755");
	q_empty = tu_path(empty, "queue");
	free(g_q);
	g_q = tu_path(full, "queue");
	publish(g_q, "1 2 3\n");
	/* as if the file had been copied there: no lock file, and none can
	 * be made */
	lock = tu_xasprintf("%s%s", g_q, MMAPQ_LOCK_SUFFIX);
	EXPECT(unlink(lock) == 0, "unlink %s: %s", lock, strerror(errno));
	before = slurp(g_q, &blen);
	remount_ro(empty);
	remount_ro(full);

	/* nothing there: a new queue cannot be created */
	x = RUN(false, "1\n", "mmapq-producer", "--config", g_cfg, "--queue", q_empty);
	expect_exit(&x, EXIT_MS, 73, q_empty, "Read-only file system", END);
	prog_free(&x);
	x = RUN(false, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", q_empty);
	expect_exit(&x, EXIT_MS, 73, q_empty, "Read-only file system", END);
	prog_free(&x);
	left = dir_entries(empty);
	EXPECT(!*left, "something appeared on a read-only file system: %s", left);
	free(left);

	/* a valid queue: the daemons need it read-write */
	x = RUN(false, "4\n", "mmapq-producer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "Read-only file system", END);
	prog_free(&x);
	x = RUN(false, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 73, g_q, "Read-only file system", END);
	prog_free(&x);
	/* the read-only observer does not, nor the lock file: it says it
	 * judged by the pid */
	x = RUN(false, NULL, "mmapqctl", "--queue", g_q, "status");
	expect_exit(&x, EXIT_MS, 0, END);
	EXPECT(strstr(out_text(&x), "head 0, tail 3") &&
	       strstr(out_text(&x), "pid not running, lock file not readable"), "mmapqctl status: '%s'",
	       out_text(&x));
	prog_free(&x);
	x = RUN(false, NULL, "mmapqctl", "--queue", g_q, "dump");
	expect_exit(&x, EXIT_MS, 0, END);
	EXPECT(strcmp(out_text(&x), "0\t1\n1\t2\n2\t3\n") == 0, "mmapqctl dump: '%s'", out_text(&x));
	prog_free(&x);
	after = slurp(g_q, &alen);
	EXPECT(alen == blen && memcmp(before, after, blen) == 0, "%s changed", g_q);
	free(before);
	free(after);
	free(q_empty);
	free(empty);
	free(full);
	free(lock);
}

/* ---- things that are not queue files, for mmapqctl ----------------------------- */

static void case_special_files_ctl(void)
{
	char *fifo = tu_path(g_dir, "fifo"), *sub = tu_path(g_dir, "subdir");
	char *dev = tu_path(g_dir, "nulldev"), *dangling = tu_path(g_dir, "dangling");
	char *nowhere = tu_path(g_dir, "nowhere"), *link = tu_path(g_dir, "link");
	char *before, *after;
	size_t blen, alen;
	struct special {
		const char *path, *needle;
	} sp[5];
	int n = 0, mknod_errno = 0;

	publish(g_q, "1 2 3\n");
	before = slurp(g_q, &blen);
	EXPECT(mkfifo(fifo, 0600) == 0, "mkfifo: %s", strerror(errno));
	sp[n++] = (struct special){fifo, "FIFO"};
	EXPECT(mkdir(sub, 0700) == 0, "mkdir: %s", strerror(errno));
	sp[n++] = (struct special){sub, "directory"};
	if (mknod(dev, S_IFCHR | 0600, makedev(1, 3)) == 0) /* /dev/null's numbers */
		sp[n++] = (struct special){dev, "device"};
	else
		mknod_errno = errno; /* the others first, then skip */
	EXPECT(symlink(nowhere, dangling) == 0, "symlink: %s", strerror(errno));
	sp[n++] = (struct special){dangling, "symbolic link"};
	EXPECT(symlink(g_q, link) == 0, "symlink: %s", strerror(errno));
	sp[n++] = (struct special){link, "symbolic link"};

	for (int i = 0; i < n; i++) {
		for (int j = 0; j < 4; j++) {
			const char *path = sp[i].path;
			struct prog x = j == 0 ? RUN(false, NULL, "mmapqctl", "--queue", path, "status")
			              : j == 1 ? RUN(false, NULL, "mmapqctl", "--queue", path, "dump")
			              : j == 2 ? RUN(false, NULL, "mmapqctl", "--queue", path, "--json", "status")
			                       : RUN(false, NULL, "mmapqctl", "--queue", path, "--json", "dump");
			/* a FIFO with no writer would block a blocking open: the
			 * deadline catches a hang */
			expect_exit(&x, EXIT_MS, 65, path, sp[i].needle, END);
			EXPECT(x.o.len == 0, "mmapqctl printed '%s' for %s", out_text(&x), path);
			prog_free(&x);
		}
	}
	EXPECT(access(nowhere, F_OK) < 0, "%s was created through the dangling link", nowhere);
	after = slurp(g_q, &alen);
	EXPECT(alen == blen && memcmp(before, after, blen) == 0, "the link's target %s changed", g_q);
	free(before);
	free(after);
	free(fifo);
	free(sub);
	free(dev);
	free(dangling);
	free(nowhere);
	free(link);
	if (mknod_errno)
		tu_skip("mknod refused (%s): the device could not be checked (the FIFO, directory and"
		        " links were)", strerror(mknod_errno));
}

/*
 * open(2) of a Unix socket fails with ENXIO before map_file's "is not a
 * regular file" check: the programs must still say it is a socket and exit
 * 65, like for a FIFO or a device (not 74, "I/O error").
 */
static void case_socket_at_path(void)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	char *sock = tu_path(g_dir, "sock");
	struct prog x;

	EXPECT(fd >= 0 && strlen(sock) < sizeof(sa.sun_path), "socket: %s", strerror(errno));
	strcpy(sa.sun_path, sock);
	EXPECT(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
	for (int j = 0; j < 3; j++) {
		x = j == 0 ? RUN(false, "1\n", "mmapq-producer", "--config", g_cfg, "--queue", sock)
		  : j == 1 ? RUN(false, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", sock)
		           : RUN(false, NULL, "mmapqctl", "--queue", sock, "status");
		EXPECT(pump(&x, EXIT_MS, NULL, NULL), "%s hangs on a socket", x.name);
		EXPECT(!WIFSIGNALED(x.status), "%s crashed: %s", x.name, describe(&x));
		EXPECT(WIFEXITED(x.status) && WEXITSTATUS(x.status) == 65 && strstr(err_text(&x), "socket"),
		       "%s with a Unix socket at the queue path: %s, expected exit 65 and a message"
		       " saying it is a socket; stderr: %s", x.name, describe(&x), err_text(&x));
		prog_free(&x);
	}
	close(fd);
	free(sock);
}


/* ---- damaged and old files ------------------------------------------------------ */

/* The header of the queue file at path, mapped read-write (MAP_SHARED), to
 * damage it as a disk or a bug would; munmap it with sizeof(header). */
static struct mmapq_header *map_header(const char *path)
{
	int fd = open(path, O_RDWR | O_CLOEXEC);
	struct mmapq_header *h;

	EXPECT(fd >= 0, "open %s: %s", path, strerror(errno));
	h = mmap(NULL, sizeof(*h), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	EXPECT(h != MAP_FAILED, "mmap %s: %s", path, strerror(errno));
	close(fd);
	return h;
}

/* Both daemons refuse the file at g_q: exit 65, stderr naming the file,
 * what is wrong (why, NULL: not checked) and what to do (advice). */
static void both_refuse(const char *why, const char *advice)
{
	for (int i = 0; i < 2; i++) {
		struct prog x = i ? RUN(false, NULL, "mmapq-consumer", "--config", g_cfg, "--queue", g_q)
		                  : RUN(false, "4\n", "mmapq-producer", "--config", g_cfg, "--queue", g_q);

		expect_exit(&x, EXIT_MS, 65, g_q, advice, why ? why : g_q, END);
		prog_free(&x);
	}
}

/*
 * A file marked clean (so nobody walks it) whose tail is no longer where a
 * frame can end: no daemon may use it, and each says what to do about it.
 */
static void case_damaged_names_repair(void)
{
	struct mmapq_header *h;

	publish(g_q, "1 2 3\n");
	h = map_header(g_q);
	EXPECT(h->state.clean == 1, "a queue closed by its last user is not marked clean");
	h->producer.tail_byte += 4;
	munmap(h, sizeof(*h));
	both_refuse("positions out of bounds", "`mmapqctl repair`");
}

/* A file of format version 3 (fixed-size slots): the daemons refuse it,
 * name the command that carries its records over, and leave it as it is. */
static void case_legacy_names_recreate(void)
{
	int64_t v[3] = {7, 8, 9};
	struct mmapq_record recs[3];
	char *before, *after;
	size_t blen, alen;

	for (int i = 0; i < 3; i++)
		recs[i] = (struct mmapq_record){.seq = (uint64_t)i, .len = sizeof(v[i]), .data = &v[i]};
	EXPECT(tu_write_legacy_queue(g_q, 3, MMAPQ_FORMAT_INT, 16, 64, 0, recs, 3, NULL, 0, 0) == 0,
	       "write a version-3 file");
	before = slurp(g_q, &blen);
	both_refuse(NULL, "`mmapqctl recreate`");
	after = slurp(g_q, &alen);
	EXPECT(alen == blen && memcmp(before, after, blen) == 0, "the refused opens modified %s", g_q);
	free(before);
	free(after);
}

/*
 * Ten int records (frames of 16 bytes), the file left as a crash leaves it
 * (not marked clean) with the checksum of record 5 no longer matching its
 * payload: the producer that attaches alone salvages it, keeps records 0
 * to 4, and says so.
 */
static void case_salvage_logged(void)
{
	struct mmapq_header *h;
	struct prog x;
	int fd;
	unsigned char b;

	publish(g_q, "0 1 2 3 4 5 6 7 8 9\n");
	h = map_header(g_q);
	h->state.clean = 0;
	munmap(h, sizeof(*h));
	fd = open(g_q, O_RDWR | O_CLOEXEC);
	EXPECT(fd >= 0 && pread(fd, &b, 1, MMAPQ_HEADER_SIZE + 5 * 16 + 8) == 1, "read: %s",
	       strerror(errno));
	b ^= 0x40;
	EXPECT(pwrite(fd, &b, 1, MMAPQ_HEADER_SIZE + 5 * 16 + 8) == 1, "write: %s", strerror(errno));
	close(fd);
	x = RUN(false, "", "mmapq-producer", "--config", g_cfg, "--queue", g_q);
	expect_exit(&x, EXIT_MS, 0, g_q, "was not closed cleanly and is damaged: its salvage dropped 5"
	            " records (past them: seq 5..9; 80 bytes); the records kept: seq 0..4", END);
	prog_free(&x);
	x = RUN(false, NULL, "mmapqctl", "--queue", g_q, "dump");
	expect_exit(&x, EXIT_MS, 0, END);
	EXPECT(!strcmp(out_text(&x), "0\t0\n1\t1\n2\t2\n3\t3\n4\t4\n"), "after the salvage: '%s'",
	       out_text(&x));
	prog_free(&x);
}

/* ---- runner ---------------------------------------------------------------------- */

/* Make every directory under dir removable again. */
static void chmod_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	chmod(dir, 0755);
	if (!d)
		return;
	while ((e = readdir(d))) {
		struct stat st;
		char *p;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = tu_path(dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			chmod_tree(p);
		free(p);
	}
	closedir(d);
}

/*
 * Each case in a child of its own, in a process group of its own, with a
 * deadline: setup returns in the child, which runs the case; this process
 * waits for it, kills whatever it left running (its process group), makes
 * its directory removable (and removes it if it passed) and exits as the
 * case did.
 */
static void setup(void)
{
	uint64_t t0 = tu_now_ms();
	pid_t pid;
	int st, code;

	g_dir = tu_mkdtemp("attach");
	g_q = tu_path(g_dir, "queue");
	if (chmod(g_dir, 0755) < 0)
		tu_die("chmod");
	pid = tu_fork();
	if (pid == 0) {
		setpgid(0, 0);
		g_cfg = write_cfg("test.ini", "[queue]\nsize = 16K\nmax_record = 1K\n[consumer]\noutput = stdout\n"
		                  "[log]\nlevel = debug\n");
		signal(SIGPIPE, SIG_IGN);
		return;
	}
	setpgid(pid, pid);
	st = tu_wait(pid, CASE_TIMEOUT_MS);
	if (st == -ETIMEDOUT) {
		fprintf(stderr, "test_attach: FAIL: the case did not finish within %d ms\n",
		        CASE_TIMEOUT_MS);
		tu_dump_queue(g_q, "case hung");
		kill(-pid, SIGKILL);
		tu_kill(pid);
		code = 1;
	} else {
		code = tu_exit_code(st);
	}
	/* whatever the case started and left running (its process group) */
	kill(-pid, SIGKILL);
	while (waitpid(-pid, &st, 0) > 0 || errno == EINTR)
		;
	chmod_tree(g_dir);
	if (code == 0 || code == TEST_SKIP)
		tu_rmdir_r(g_dir);
	fprintf(stderr, "test_attach: %s (%" PRIu64 " ms)\n",
	        code == 0 ? "PASS" : code == TEST_SKIP ? "SKIP" : "FAIL", tu_now_ms() - t0);
	exit(code);
}

int main(int argc, char **argv)
{
	static const struct tu_case cases[] = {
		{"sigbus_consumer_waiting", case_sigbus_consumer_waiting},
		{"sigbus_producer_attached", case_sigbus_producer_attached},
		{"sigbus_producer_slots", case_sigbus_producer_slots},
		{"sigbus_consumer_reading", case_sigbus_consumer_reading},
		{"ctl_truncated_extended", case_ctl_truncated_extended},
		{"extended_while_mapped", case_extended_while_mapped},
		{"deleted_while_attached", case_deleted_while_attached},
		{"replaced_while_attached", case_replaced_while_attached},
		{"stale_publish_after_drain", case_stale_publish_after_drain},
		{"header_zeroed_while_mapped", case_header_zeroed_while_mapped},
		{"permission_denied", case_permission_denied},
		{"enospc", case_enospc},
		{"read_only_fs", case_read_only_fs},
		{"special_files_ctl", case_special_files_ctl},
		{"socket_at_path", case_socket_at_path},
		{"damaged_names_repair", case_damaged_names_repair},
		{"legacy_names_recreate", case_legacy_names_recreate},
		{"salvage_logged", case_salvage_logged},
	};

	/* orphans of a failed case come back to us, so they can be reaped */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	return tu_main_cases_setup(argc, argv, cases, sizeof(cases) / sizeof(cases[0]), setup);
}
