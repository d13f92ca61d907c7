/* SPDX-License-Identifier: MIT */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mmapq.h"
#include "mmapq_format.h"

extern char **environ;

void tu_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what, strerror(errno));
	exit(99);
}

struct mmapq_status tu_queue_status(const char *path)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_status st;
	struct mmapq_error err;
	struct mmapq *q;
	int r = mmapq_open(&p, &q, &err);

	if (r == 0) {
		r = mmapq_status(q, &st);
		mmapq_close(q);
		if (r == 0)
			return st;
		snprintf(err.msg, sizeof(err.msg), "%s: %s", path, mmapq_strerror(r));
	}
	fprintf(stderr, "%s: cannot read the queue state: %s\n", program_invocation_short_name, err.msg);
	exit(1);
}

const struct mmapq_producer_status *tu_producer_named(const struct mmapq_producer_status *ps, int n,
                                                     const char *name)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(ps[i].name, name))
			return &ps[i];
	return NULL;
}

bool tu_consumer_status(const char *path, const char *name, struct mmapq_consumer_status *out)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	struct mmapq *q;
	bool found = false;
	int n;

	if (mmapq_open(&p, &q, NULL) < 0)
		return false;
	n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, name)) {
			*out = cs[i];
			found = true;
		}
	mmapq_close(q);
	return found;
}

uint64_t tu_now_ms(void)
{
	return mmapq_now_ns() / 1000000u;
}

/* Made by tu_mkdtemp: removed after a case that passed or skipped, by the
 * process that made them (not by a child of its that ends). */
static char *scratch[16];
static size_t n_scratch;
static pid_t scratch_owner;

static void remove_scratch(void)
{
	if (scratch_owner != getpid())
		return;
	while (n_scratch)
		tu_rmdir_r(scratch[--n_scratch]);
}

char *tu_mkdtemp(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char *d;
	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&d, "%s/mmapq-%s-XXXXXX", base, tag) < 0)
		tu_die("asprintf");
	if (!mkdtemp(d))
		tu_die("mkdtemp");
	if (scratch_owner != getpid()) {
		scratch_owner = getpid();
		n_scratch = 0;
	}
	if (n_scratch < sizeof(scratch) / sizeof(scratch[0]))
		scratch[n_scratch++] = d;
	return d;
}

/* A failure: the heading given, the message, the queue state at qpath. */
static void report_failure(const char *qpath, const char *fmt, va_list ap)
{
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	tu_dump_queue(qpath, "failure");
}

void tu_check_failed(const char *qpath, const char *file, int line, const char *cond,
                     const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "CHECK failed at %s:%d: %s\n    ", file, line, cond);
	va_start(ap, fmt);
	report_failure(qpath, fmt, ap);
	va_end(ap);
}

void tu_expect_int(const char *qpath, const char *file, int line, const char *cond, uint64_t a,
                   uint64_t b)
{
	if (a == b)
		return;
	tu_check_failed(qpath, file, line, cond, "%" PRId64 " != %" PRId64 " (0x%" PRIx64 " != 0x%" PRIx64 ")",
	                (int64_t)a, (int64_t)b, a, b);
	exit(1);
}

void tu_expect_str(const char *qpath, const char *file, int line, const char *cond, const char *a,
                   const char *b)
{
	if (a && b ? !strcmp(a, b) : a == b)
		return;
	if (!a || !b)
		tu_check_failed(qpath, file, line, cond, "%s%s%s != %s%s%s", a ? "\"" : "", a ? a : "NULL",
		                a ? "\"" : "", b ? "\"" : "", b ? b : "NULL", b ? "\"" : "");
	else
		tu_check_failed(qpath, file, line, cond, "\"%s\" != \"%s\"", a, b);
	exit(1);
}

void tu_expect_mem(const char *qpath, const char *file, int line, const char *cond, const void *a,
                   const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	size_t i = 0;

	while (i < n && x[i] == y[i])
		i++;
	if (i == n)
		return;
	tu_check_failed(qpath, file, line, cond, "%zu bytes differ from byte %zu on: 0x%02x != 0x%02x", n,
	                i, x[i], y[i]);
	exit(1);
}

void tu_rmdir_r(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d))) {
		char *p;
		struct stat st;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		p = tu_path(dir, e->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
			tu_rmdir_r(p);
		else
			unlink(p);
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

char *tu_path(const char *dir, const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", dir, name) < 0)
		tu_die("asprintf");
	return p;
}

char *tu_xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		tu_die("vasprintf");
	return s;
}

const char *tu_source_dir(void)
{
	const char *d = getenv("MMAPQ_SOURCE_DIR");

	if (!d || !*d) {
		fprintf(stderr, "MMAPQ_SOURCE_DIR is not set (run the tests with ctest)\n");
		exit(99);
	}
	return d;
}

char *tu_bin(const char *name)
{
	const char *dir = getenv("MMAPQ_BIN_DIR");
	if (!dir || !*dir)
		dir = ".";
	return tu_path(dir, name);
}

int tu_spawn(struct tu_proc *p, char *const argv[], char *const env_extra[],
             bool pipe_in, bool pipe_out, bool pipe_err)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
	pid_t pid;

	if ((pipe_in && pipe2(in, O_CLOEXEC) < 0) || (pipe_out && pipe2(out, O_CLOEXEC) < 0) ||
	    (pipe_err && pipe2(err, O_CLOEXEC) < 0))
		tu_die("pipe2");
	pid = fork();
	if (pid < 0)
		tu_die("fork");
	if (pid == 0) {
		if (pipe_in)
			dup2(in[0], 0);
		if (pipe_out)
			dup2(out[1], 1);
		if (pipe_err)
			dup2(err[1], 2);
		for (size_t i = 0; env_extra && env_extra[i]; i++)
			putenv(env_extra[i]);
		execve(argv[0], argv, environ);
		fprintf(stderr, "testutil: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	p->pid = pid;
	p->in_fd = pipe_in ? in[1] : -1;
	p->out_fd = pipe_out ? out[0] : -1;
	p->err_fd = pipe_err ? err[0] : -1;
	if (pipe_in)
		close(in[0]);
	if (pipe_out)
		close(out[1]);
	if (pipe_err)
		close(err[1]);
	return 0;
}

pid_t tu_start(char *const argv[], const struct tu_child *c)
{
	pid_t pid = fork();

	if (pid < 0)
		tu_die("fork");
	if (pid > 0)
		return pid;
	for (int fd = 0; fd <= 2; fd++) {
		int src = c->stdio[fd] >= 0 ? c->stdio[fd] : open("/dev/null", O_RDWR | O_CLOEXEC);
		if (src < 0 || dup2(src, fd) < 0)
			_exit(126);
	}
	for (int fd = 0; fd <= 2; fd++)
		if (c->closed >> fd & 1)
			close(fd);
	if (c->rlimit_resource >= 0) {
		struct rlimit rl = {.rlim_cur = c->rlimit, .rlim_max = c->rlimit};
		if (setrlimit(c->rlimit_resource, &rl) < 0)
			_exit(126);
	}
	for (size_t i = 0; c->env_extra && c->env_extra[i]; i++)
		putenv(c->env_extra[i]);
	execve(argv[0], argv, environ);
	_exit(127);
}

void tu_pipe(int fds[2])
{
	if (pipe2(fds, O_CLOEXEC) < 0)
		tu_die("pipe2");
}

pid_t tu_fork(void)
{
	pid_t pid;

	fflush(NULL);
	pid = fork();
	if (pid < 0)
		tu_die("fork");
	return pid;
}

int tu_become_nobody(void)
{
	if (setgroups(0, NULL) < 0 || setgid(TU_NOBODY) < 0 || setuid(TU_NOBODY) < 0)
		return -errno;
	return 0;
}

static pid_t tracked[64];
static int n_tracked;
static pid_t tracker; /* the process whose children they are */

void tu_track(pid_t pid)
{
	if (tracker != getpid()) {
		tracker = getpid();
		n_tracked = 0;
	}
	if (n_tracked < (int)(sizeof(tracked) / sizeof(tracked[0])))
		tracked[n_tracked++] = pid;
}

void tu_untrack(pid_t pid)
{
	for (int i = 0; i < n_tracked; i++)
		if (tracked[i] == pid) {
			tracked[i] = tracked[--n_tracked];
			return;
		}
}

void tu_kill_tracked(void)
{
	if (tracker != getpid())
		return; /* a child of the test's (atexit runs there too): not its own */
	while (n_tracked > 0) {
		pid_t pid = tracked[--n_tracked];
		fprintf(stderr, "%s: killing leftover child %d\n", program_invocation_short_name, (int)pid);
		tu_kill(pid);
	}
}

int tu_wait(pid_t pid, int timeout_ms)
{
	int pfd = (int)syscall(SYS_pidfd_open, pid, 0);
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
	int status;

	if (pfd < 0)
		tu_die("pidfd_open");
	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			tu_die("waitpid");
		uint64_t now = tu_now_ms();
		if (now >= deadline) {
			close(pfd);
			return -ETIMEDOUT;
		}
		/* the pidfd becomes readable when the child exits */
		struct pollfd pf = {.fd = pfd, .events = POLLIN};
		poll(&pf, 1, (int)(deadline - now));
	}
	close(pfd);
	return status;
}

void tu_kill(pid_t pid)
{
	int status;
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
}

static char *read_loop(int fd, const char *needle, int timeout_ms, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;

	if (!buf)
		tu_die("malloc");
	for (;;) {
		buf[n] = '\0';
		if (needle && strstr(buf, needle))
			break;
		uint64_t now = tu_now_ms();
		if (now >= deadline) {
			free(buf);
			return NULL;
		}
		struct pollfd pf = {.fd = fd, .events = POLLIN};
		int r = poll(&pf, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		if (cap - n < 2048) {
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				tu_die("realloc");
		}
		ssize_t k = read(fd, buf + n, cap - n - 1);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			if (needle) {
				free(buf);
				return NULL;
			}
			break;
		}
		n += (size_t)k;
	}
	if (len)
		*len = n;
	return buf;
}

char *tu_read_all(int fd, int timeout_ms, size_t *len)
{
	return read_loop(fd, NULL, timeout_ms, len);
}

char *tu_read_until(int fd, const char *needle, int timeout_ms, size_t *len)
{
	return read_loop(fd, needle, timeout_ms, len);
}

int tu_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t k = write(fd, p, len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return -errno;
		p += k;
		len -= (size_t)k;
	}
	return 0;
}

char *tu_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	char *s;
	if (fd < 0)
		return NULL;
	s = tu_read_all(fd, 10000, len);
	close(fd);
	return s;
}

char *tu_write_in(const char *dir, const char *name, const char *text)
{
	char *p = tu_path(dir, name);

	if (tu_write_file(p, text, strlen(text)) < 0)
		tu_die(p);
	return p;
}

int tu_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r;
	if (fd < 0)
		return -errno;
	r = tu_write_all(fd, buf, len);
	close(fd);
	return r;
}

int tu_write_legacy_queue(const char *path, uint32_t version, uint32_t format, uint32_t capacity,
                          uint32_t record_size, uint64_t first, const struct mmapq_record *recs,
                          uint32_t n, const struct tu_legacy_consumer *cs, uint32_t ncs,
                          uint8_t id_byte)
{
	uint32_t ss = mmapq_slot_size_v3(version, format, record_size);
	size_t len = MMAPQ_HEADER_SIZE_V3 + (size_t)capacity * ss;
	uint8_t *b = calloc(1, len), *slots = b + MMAPQ_HEADER_SIZE_V3;
	struct mmapq_header_v3 *h3 = (struct mmapq_header_v3 *)b;
	struct mmapq_header_v2 *h2 = (struct mmapq_header_v2 *)b;
	int r;

	if (!b)
		return -ENOMEM;
	if (n > capacity || version < 1 || version > 3) {
		free(b);
		return -EINVAL;
	}
	memcpy(h3->id.magic, MMAPQ_MAGIC, sizeof(h3->id.magic));
	h3->id.version = version;
	h3->id.header_size = MMAPQ_HEADER_SIZE_V3;
	h3->id.byte_order = MMAPQ_BYTE_ORDER;
	h3->id.format = format;
	h3->id.capacity = capacity;
	h3->id.record_size = record_size;
	h3->id.slot_size = ss;
	h3->id.file_size = len;
	h3->id.created_usec = 1;
	h3->producer.position = first + n;
	h3->floor = first; /* versions 1 and 2: the consumer's head, the same offset */
	for (uint32_t i = 0; i < n; i++) {
		uint64_t seq = first + i;
		uint8_t *slot = slots + (size_t)(seq & (capacity - 1)) * ss;

		if (recs[i].len > record_size || (format == MMAPQ_FORMAT_INT && recs[i].len != 8)) {
			free(b);
			return -EINVAL;
		}
		if (version >= 2 && format == MMAPQ_FORMAT_INT) {
			struct mmapq_int_slot_v3 is = {.seq = seq};
			memcpy(&is.value, recs[i].data, 8);
			memcpy(slot, &is, sizeof(is));
		} else {
			struct mmapq_slot_v3 sl = {.seq = seq, .len = recs[i].len};
			memcpy(slot, &sl, sizeof(sl));
			memcpy(slot + sizeof(sl), recs[i].data, recs[i].len);
		}
	}
	if (version == 3) {
		h3->id.max_consumers = 8;
		for (uint32_t i = 0; i < ncs && i < 8; i++) {
			struct mmapq_consumer_v3 *c = &h3->consumers[i];
			c->position = cs[i].position;
			c->state = MMAPQ_CONSUMER_REGISTERED;
			c->attach_position = cs[i].position;
			c->registered_usec = 1;
			snprintf(c->name, sizeof(c->name), "%s", cs[i].name);
		}
		memset(h3->queue_id, id_byte, sizeof(h3->queue_id));
	} else if (ncs) {
		h2->consumer.attaches = 1;
	}
	r = tu_write_file(path, b, len);
	free(b);
	return r;
}

/* The words a wait sleeps on, raw from the file: the mutex's lock word, and
 * for not_full and each consumer's not_empty the futex word and whether its
 * waiter is registered. */
static void dump_wait_words(const char *path, const struct mmapq_consumer_status *cs, int n)
{
	struct mmapq_header h;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	bool ok = fd >= 0 && pread(fd, &h, sizeof(h), 0) == (ssize_t)sizeof(h);
	uint32_t lock;

	if (fd >= 0)
		close(fd);
	if (!ok || h.version != MMAPQ_VERSION)
		return; /* versions 1 to 3 are only read: nobody waits in them */
	memcpy(&lock, h.lock.bytes, sizeof(lock));
	fprintf(stderr, "     lock word 0x%08" PRIx32 " not_full (seq %" PRIu32 " waiting %" PRIu32 ")",
	        lock, h.not_full.seq, h.not_full.waiting);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++) {
		const struct mmapq_cond *c = &h.consumers[cs[i].index % MMAPQ_CONSUMERS_MAX].not_empty;

		fprintf(stderr, " not_empty[%" PRIu32 "] (seq %" PRIu32 " waiting %" PRIu32 ")", cs[i].index,
		        c->seq, c->waiting);
	}
	fputc('\n', stderr);
}

void tu_dump_queue(const char *path, const char *why)
{
	struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
	struct mmapq_error err;
	struct mmapq_status st;
	struct mmapq *q = NULL;
	int r;

	if (!path || !*path)
		return; /* a test of something that has no queue */
	fprintf(stderr, "---- queue state (%s): %s\n", why, path);
	r = mmapq_open(&p, &q, &err);
	if (r < 0) {
		fprintf(stderr, "     cannot open: %s\n", err.msg);
		return;
	}
	if (mmapq_status(q, &st) == 0) {
		fprintf(stderr,
		        "     version %" PRIu32 " size %" PRIu64 " max_record %" PRIu32 " head %" PRIu64
		        " tail %" PRIu64 " depth %" PRIu64 " used %" PRIu64 " bytes clean %d salvages %"
		        PRIu64 "\n", st.version, st.size, st.max_record, st.head, st.tail, st.tail - st.head,
		        st.used_bytes, st.clean, st.salvage.count);
		fprintf(stderr,
		        "     producer pid %d attached %d dropped %" PRIu64 " bad %" PRIu64
		        " recoveries %" PRIu64 " attaches %" PRIu64 "\n",
		        st.producer.pid, st.producer.attached, st.producer.dropped, st.producer.bad_input,
		        st.producer.recoveries, st.producer.attaches);
		struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
		int n = mmapq_consumers(q, cs, MMAPQ_CONSUMERS_MAX);

		if (n < 0)
			fprintf(stderr, "     consumer table: %s\n", mmapq_strerror(n));
		for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
			fprintf(stderr,
			        "     consumer '%s' (entry %" PRIu32 ") at %" PRIu64 " lag %" PRIu64
			        " (%" PRIu64 " bytes) pid %d attached %d recoveries %" PRIu64 " attaches %"
			        PRIu64 "\n", cs[i].name, cs[i].index, cs[i].position, cs[i].lag,
			        cs[i].lag_bytes, cs[i].pid,
			        cs[i].attached, cs[i].recoveries, cs[i].attaches);
		dump_wait_words(path, cs, n);
	}
	mmapq_close(q);
}

int tu_exit_code(int status)
{
	if (status < 0)
		return -1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return -1;
}

void tu_skip(const char *fmt, ...)
{
	va_list ap;

	fputs("SKIP: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	remove_scratch();
	exit(TEST_SKIP);
}

/* One case in this process: it returns only if it passed, and then its
 * scratch directories go. */
static int run_case(const struct tu_case *c, void (*setup)(void))
{
	if (setup)
		setup();
	c->run();
	remove_scratch();
	return 0;
}

int tu_main_cases(int argc, char **argv, const struct tu_case *cases, size_t n)
{
	return tu_main_cases_setup(argc, argv, cases, n, NULL);
}

int tu_main_cases_setup(int argc, char **argv, const struct tu_case *cases, size_t n,
                        void (*setup)(void))
{
	unsigned failed = 0, skipped = 0;

	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (size_t i = 0; i < n; i++)
			printf("%s\n", cases[i].name);
		return 0;
	}
	if (argc == 2) {
		for (size_t i = 0; i < n; i++)
			if (!strcmp(argv[1], cases[i].name))
				return run_case(&cases[i], setup);
		fprintf(stderr, "%s: no case '%s' (--list lists them)\n", argv[0], argv[1]);
		return 2;
	}
	if (argc != 1) {
		fprintf(stderr, "usage: %s [--list | CASE]\n", argv[0]);
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		pid_t pid;
		int st, code;

		fflush(NULL);
		pid = fork();
		if (pid < 0)
			tu_die("fork");
		if (pid == 0)
			exit(run_case(&cases[i], setup));
		while (waitpid(pid, &st, 0) < 0)
			if (errno != EINTR)
				tu_die("waitpid");
		code = tu_exit_code(st);
		fprintf(stderr, "%s: %s: %s\n", argv[0], cases[i].name,
		        code == 0 ? "passed" : code == TEST_SKIP ? "skipped" : "FAILED");
		failed += code != 0 && code != TEST_SKIP;
		skipped += code == TEST_SKIP;
	}
	fprintf(stderr, "%s: %zu cases, %u failed, %u skipped\n", argv[0], n, failed, skipped);
	return failed ? 1 : 0;
}

bool tu_wait_role(const char *path, pid_t pid, bool producer, int timeout_ms)
{
	uint64_t end = tu_now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		struct mmapq_params p = {.path = path, .role = MMAPQ_ROLE_OBSERVER};
		struct mmapq_status st;
		struct mmapq *q;
		bool ok = false;

		if (mmapq_open(&p, &q, NULL) == 0) {
			const struct mmapq_side_status *side = producer ? &st.producer : &st.consumer;
			ok = mmapq_status(q, &st) == 0 && side->pid == pid && side->attached;
			mmapq_close(q);
		}
		if (ok)
			return true;
		if (tu_now_ms() >= end)
			return false;
		sched_yield();
	}
}

bool tu_in_futex_on(pid_t pid, const char *path, size_t offset)
{
	char *maps_path = tu_xasprintf("/proc/%d/maps", (int)pid);
	char *sc_path = tu_xasprintf("/proc/%d/syscall", (int)pid);
	char *maps = tu_read_file(maps_path, NULL), *sc = tu_read_file(sc_path, NULL), *line, *save;
	unsigned long long base = 0, addr;
	size_t plen = strlen(path);
	long nr;
	bool yes = false;

	for (line = maps ? strtok_r(maps, "\n", &save) : NULL; line; line = strtok_r(NULL, "\n", &save)) {
		size_t n = strlen(line);
		/* the mapping that starts at the file's offset 0 */
		if (n > plen && !strcmp(line + n - plen, path) && strstr(line, " 00000000 ")) {
			base = strtoull(line, NULL, 16);
			break;
		}
	}
	if (base && sc && sscanf(sc, "%ld %llx", &nr, &addr) == 2)
		yes = nr == SYS_futex && addr == base + offset;
	free(maps);
	free(sc);
	free(maps_path);
	free(sc_path);
	return yes;
}

unsigned tu_time_factor(void)
{
	const char *e = getenv("MMAPQ_TEST_TIME_FACTOR");
	unsigned long v = e ? strtoul(e, NULL, 10) : 0;

	return v >= 1 && v <= 1000 ? (unsigned)v : 1;
}

void tu_need_faults(void)
{
	if (!getenv("MMAPQ_FAULTS"))
		tu_skip("needs the fault points of a build with -DMMAPQ_FAULT_INJECTION=ON");
}
