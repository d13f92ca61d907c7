/* SPDX-License-Identifier: MIT */
#include "testproc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

static const char *queue_path = "";


void tp_set_queue(const char *path)
{
	queue_path = path;
}

/* ---- children's output: every open stream is drained while we wait ---- */

static struct tp_out *outs[32];
static int nouts;
struct tp_feed *tp_feeding;

struct tp_out *tp_out_new(int fd)
{
	struct tp_out *o = calloc(1, sizeof(*o));

	if (!o)
		tu_die("calloc");
	o->fd = fd;
	o->s = calloc(1, 1);
	o->cap = 1;
	if (!o->s)
		tu_die("calloc");
	if (nouts >= (int)(sizeof(outs) / sizeof(outs[0])))
		tu_die("too many streams");
	outs[nouts++] = o;
	return o;
}

void tp_out_free(struct tp_out *o)
{
	if (!o)
		return;
	for (int i = 0; i < nouts; i++)
		if (outs[i] == o) {
			outs[i] = outs[--nouts];
			break;
		}
	if (o->fd >= 0)
		close(o->fd);
	free(o->s);
	free(o);
}

const char *tp_str(const struct tp_out *o)
{
	return o && o->s ? o->s : "";
}

/* One poll over every open stream (and the feed), reading and writing what
 * is ready.  false if the deadline passed or there is nothing to wait for. */
bool tp_pump(uint64_t deadline)
{
	struct pollfd pf[33];
	struct tp_out *who[33];
	int n = 0, r;
	uint64_t now;

	for (int i = 0; i < nouts; i++) {
		if (outs[i]->eof || outs[i]->fd < 0)
			continue;
		who[n] = outs[i];
		pf[n++] = (struct pollfd){.fd = outs[i]->fd, .events = POLLIN};
	}
	if (tp_feeding && tp_feeding->off < tp_feeding->len) {
		who[n] = NULL;
		pf[n++] = (struct pollfd){.fd = tp_feeding->fd, .events = POLLOUT};
	}
	if (!n)
		return false;
	now = tu_now_ms();
	if (now >= deadline)
		return false;
	r = poll(pf, (nfds_t)n, (int)(deadline - now));
	if (r < 0 && errno == EINTR)
		return true;
	if (r < 0)
		tu_die("poll");
	if (r == 0)
		return false;
	for (int i = 0; i < n; i++) {
		if (!pf[i].revents)
			continue;
		if (!who[i]) {
			ssize_t k = write(tp_feeding->fd, tp_feeding->data + tp_feeding->off,
			                  tp_feeding->len - tp_feeding->off);
			if (k > 0)
				tp_feeding->off += (size_t)k;
			else if (k < 0 && errno != EAGAIN && errno != EINTR) {
				tp_feeding->err = errno;
				tp_feeding->off = tp_feeding->len; /* give up: the reader went away */
			}
			continue;
		}
		struct tp_out *o = who[i];
		if (o->cap - o->len < 65537) {
			o->cap = o->cap < 65536 ? 131072 : o->cap * 2;
			o->s = realloc(o->s, o->cap);
			if (!o->s)
				tu_die("realloc");
		}
		ssize_t k = read(o->fd, o->s + o->len, o->cap - o->len - 1);
		if (k < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (k <= 0)
			o->eof = true;
		else
			o->len += (size_t)k;
		o->s[o->len] = '\0';
	}
	return true;
}

/* Drain everything until t contains needle (needle NULL: until t's EOF). */
bool tp_until(struct tp_out *t, const char *needle, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
	size_t scan = 0, nl = needle ? strlen(needle) : 0;

	for (;;) {
		if (needle) {
			if (strstr(t->s + scan, needle))
				return true;
			scan = t->len > nl ? t->len - nl : 0;
			if (t->eof)
				return false;
		} else if (t->eof) {
			return true;
		}
		if (!tp_pump(deadline))
			return false;
	}
}

/* Drain everything until the feed is written completely. */
bool tp_feed_all(struct tp_feed *f, int timeout_ms)
{
	uint64_t deadline = tu_now_ms() + (uint64_t)timeout_ms;
	bool ok = true;

	fcntl(f->fd, F_SETFL, fcntl(f->fd, F_GETFL) | O_NONBLOCK);
	tp_feeding = f;
	while (f->off < f->len)
		if (!tp_pump(deadline)) {
			ok = false;
			break;
		}
	tp_feeding = NULL;
	return ok && !f->err;
}

/* ---- children ---- */

void tp_close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

void tp_kid_close(struct tp_kid *k)
{
	tp_close_fd(&k->in);
	tp_out_free(k->out);
	tp_out_free(k->err);
	k->out = k->err = NULL;
}

/* argv: a program in MMAPQ_BIN_DIR, then the arguments, NULL-terminated */
char **tp_av(const char *prog, ...)
{
	char **v = calloc(16, sizeof(*v));
	va_list ap;
	int i = 0;
	const char *a;

	if (!v)
		tu_die("calloc");
	v[i++] = tu_bin(prog);
	va_start(ap, prog);
	while ((a = va_arg(ap, const char *)) && i < 15)
		v[i++] = (char *)a;
	va_end(ap);
	return v;
}

void tp_av_free(char **v)
{
	free(v[0]);
	free(v);
}

struct tp_kid tp_spawn_env(char **argv, char *const env[], bool pin, bool pout, bool perr)
{
	struct tu_proc p;
	struct tp_kid k = {.in = -1};

	tu_spawn(&p, argv, env, pin, pout, perr);
	tu_track(p.pid);
	k.pid = p.pid;
	k.in = p.in_fd;
	if (pout)
		k.out = tp_out_new(p.out_fd);
	if (perr)
		k.err = tp_out_new(p.err_fd);
	return k;
}

struct tp_kid tp_spawn(char **argv, bool pin, bool pout, bool perr)
{
	return tp_spawn_env(argv, NULL, pin, pout, perr);
}

/* Exit code within the deadline, or -1 (the child is then SIGKILLed). */
int tp_wait_exit(struct tp_kid *k, int timeout_ms)
{
	int st = tu_wait(k->pid, timeout_ms);

	if (st == -ETIMEDOUT) {
		fprintf(stderr, "testproc: pid %d did not exit within %d ms\n", (int)k->pid,
		        timeout_ms);
		tu_dump_queue(queue_path, "child did not exit");
		tu_kill(k->pid);
		tu_untrack(k->pid);
		return -1;
	}
	tu_untrack(k->pid);
	return tu_exit_code(st);
}

/* ---- per-test state ---- */

/* "first\n...\nlast\n" */
char *tp_seq_lines(long first, long last)
{
	size_t cap = 24 * (size_t)(last - first + 2), len = 0;
	char *s = malloc(cap);

	if (!s)
		tu_die("malloc");
	s[0] = '\0';
	for (long v = first; v <= last; v++)
		len += (size_t)snprintf(s + len, cap - len, "%ld\n", v);
	return s;
}

void tp_cleanup(void)
{
	tu_kill_tracked();
	while (nouts > 0)
		tp_out_free(outs[0]);
	tp_feeding = NULL;
}

/* argv (as tp_av makes it) run to its end, every stream drained
 * meanwhile: its stdout (malloc'd), *code its exit code (-1: its stdout
 * did not end or it did not exit in time), its stderr into *err
 * (malloc'd). */
static char *tp_run(char **argv, int timeout_ms, int *code, char **err)
{
	struct tp_kid k = tp_spawn(argv, false, true, true);
	bool ended = tp_until(k.out, NULL, timeout_ms);
	char *out = strdup(tp_str(k.out));

	*code = tp_wait_exit(&k, timeout_ms);
	if (!ended)
		*code = -1;
	*err = strdup(tp_str(k.err));
	if (!out || !*err)
		tu_die("strdup");
	tp_kid_close(&k);
	return out;
}

char *tp_ctl(const char *cfg, const char *a1, const char *a2, int timeout_ms)
{
	char **av = tp_av("mmapqctl", "--config", cfg, a1, a2, NULL);
	char *err, *out;
	int code;

	out = tp_run(av, timeout_ms, &code, &err);
	if (code != 0) {
		tu_check_failed(queue_path, __FILE__, __LINE__, "code == 0", "mmapqctl %s %s: exit %d: %s",
		                a1, a2 ? a2 : "", code, err);
		exit(1);
	}
	free(err);
	tp_av_free(av);
	return out;
}
