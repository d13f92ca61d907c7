/* SPDX-License-Identifier: MIT */
/*
 * fanin.c -- fan-in (--fanin): 1, 2 or 4 writer processes into one queue,
 * one reader checking every record, 64 B records, over three transports:
 *
 *   mmapq    the library: producers named p0..p3 on one queue, batched as
 *            the throughput job's mmapq row is (reserve, put_many up to
 *            the batch, publish; a put that finds its room taken by another
 *            producer, -ENOBUFS, reserves again); the reader the default
 *            consumer, mmapq_get_many a batch at a time.
 *   mq       POSIX mq: the writers mq_send to one queue (as deep as
 *            transport_mq.c opens), one reader mq_receive.
 *   socket   one AF_UNIX socket: the writers each connected to the socket
 *            input of one mmapq-producer (format binary, [queue] size and
 *            max_record as the mmapq row's, ACK lines off), writing a batch
 *            of framed records per write(2), each ending with the OK line
 *            that says all of its records are published; the reader a
 *            library consumer of the daemon's queue.
 *
 * A record carries its writer and its number in that writer's order (the
 * index of rec_fill: writer << 40 | number), so the reader checks every
 * record whole and each writer's in its order.  A run moves n records in
 * all, n / writers from each; its throughput is n over the time from the
 * first writer's start to the reader's check of the last record.  Each
 * case is shown as a ratio to the same transport's single writer of the
 * same round, and mmapq as a ratio to each peer with as many writers; the
 * nine cases take turns in every round.
 *
 * Placement: the reader on the first CPU the benchmark may use, writer i
 * on the (i + 1)-th, round robin (one writer is the throughput pair); the
 * daemon of the socket row is not pinned (the scheduler puts it where
 * there is room).  "CPUs busy" and what the CPUs allow are fanout.c's:
 * every process's CPU time from the start barrier to its end (the
 * daemon's: its run time in /proc/PID/schedstat from before the writers
 * start to after the reader is done), rate <= min(1/p_i, 1/(the sum on
 * one CPU), M / (the sum of all)), that bound over the single writer's
 * measured rate.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "bench.h"
#include "mmapq.h"
#include "testutil.h"

#define FI_SIZE 64u
#define FI_SHIFT 40 /* a record's index: writer << FI_SHIFT | its number */
#define FI_READY_MS 10000
#define FI_STOP_MS 10000
#define FI_STAGE 256u /* records filled before a put_many: 16 KiB, still in the cache */

const int fanin_writers[NFANIN] = {1, 2, 4};
const char *const fanin_key[NFI_T] = {"mmapq", "mq", "socket"};
const char *const fanin_label[NFI_T] = {"mmapq (library)", "POSIX mq", "AF_UNIX socket, mmapq-producer"};
struct fanin_result fanin;

_Static_assert(FANIN_MAX <= FANOUT_MAX, "run_group and ctl->cpu_s hold 1 + FANOUT_MAX processes");

static int fi_cpu_list[CPU_SETSIZE];
static double busy_run[NFI_T][NFANIN][MAX_RUNS];
static double bound_run[NFI_T][NFANIN][MAX_RUNS];

/* What a writer or the reader of one run needs (forked: each its copy). */
struct fi_run {
	int t, nw;
	uint64_t per;           /* records of each writer */
	char qpath[PATH_MAX];   /* mmapq, socket: the queue file */
	char sock[sizeof(((struct sockaddr_un *)0)->sun_path)];
	mqd_t mq;
};
static struct fi_run run_;
static struct cell fi_cells[1 + FANIN_MAX]; /* cell i: writer i - 1, cell 0 the reader */

/* The first writer's start (the others' are later or equal). */
static void fi_started(void)
{
	uint64_t zero = 0, t = now_ns();
	__atomic_compare_exchange_n(&ctl->t_start, &zero, t, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

/* ---- the reader's check ------------------------------------------------------ */

struct fi_check {
	uint64_t next[FANIN_MAX], got;
};

/* 0, or the child's exit code, having said what is wrong with the record. */
static int fi_take(struct fi_check *k, const void *data, size_t len)
{
	uint64_t idx = rec_index(data), w = idx >> FI_SHIFT, i = idx & ((UINT64_C(1) << FI_SHIFT) - 1);

	if (len != FI_SIZE || w >= (uint64_t)run_.nw || i != k->next[w] || !rec_ok(data, FI_SIZE, idx))
		return child_fail("fan-in %s, record %" PRIu64 " read: %zu bytes, writer %" PRIu64 " record %"
		                  PRIu64 " (expected %" PRIu64 " from that writer)%s", fanin_key[run_.t], k->got,
		                  len, w, i, w < (uint64_t)run_.nw ? k->next[w] : 0,
		                  len == FI_SIZE && w < (uint64_t)run_.nw && !rec_ok(data, FI_SIZE, idx) ?
		                  ", content damaged" : "");
	k->next[w]++;
	k->got++;
	return 0;
}

static int fi_reader_done(struct fi_check *k)
{
	cpu_window(0, true);
	ctl->t_end = now_ns();
	for (int w = 0; w < run_.nw; w++)
		if (k->next[w] != run_.per)
			return child_fail("fan-in %s: writer %d: %" PRIu64 " of %" PRIu64 " records read",
			                  fanin_key[run_.t], w, k->next[w], run_.per);
	ctl->verified = k->got;
	return 0;
}

/* ---- mmapq (and the daemon's queue) -------------------------------------------- */

static struct mmapq *fi_open(enum mmapq_role role, const char *name, uint32_t format)
{
	struct mmapq_params p = {
		.path = run_.qpath, .role = role, .size = fanin.ring_bytes, .max_record = FI_SIZE,
		.format = format, .sync = MMAPQ_SYNC_NEVER, .file_mode = 0600, .producer = name,
		.max_producers = FANIN_MAX,
	};
	struct mmapq_error e;
	struct mmapq *q = NULL;
	int r = mmapq_open(&p, &q, &e);

	if (r < 0) {
		child_fail("mmapq_open(%s): %s (%s)", run_.qpath, e.msg, mmapq_strerror(r));
		return NULL;
	}
	return q;
}

static int fi_mmapq_writer(struct cell *c)
{
	char name[8];
	int w = c->cons_ix;
	struct mmapq *q;
	uint32_t stage = FI_STAGE;
	unsigned char *buf = xalloc((size_t)FI_SIZE * stage);
	uint64_t seq = 0, base = (uint64_t)w << FI_SHIFT, deadline;
	int r;

	snprintf(name, sizeof(name), "p%d", w);
	q = fi_open(MMAPQ_ROLE_PRODUCER, name, MMAPQ_FORMAT_LINE);
	if (!q)
		return EXIT_FAIL;
	barrier();
	cpu_window(1 + w, false);
	fi_started();
	deadline = now_ns() + FAR_NS;
	while (seq < run_.per) {
		uint64_t room = 0, fit;
		uint32_t k;
		r = mmapq_reserve(q, FI_SIZE, deadline, &room);
		if (r < 0)
			return child_fail("p%d: mmapq_reserve at record %" PRIu64 ": %s", w, seq, mmapq_strerror(r));
		fit = room / ring_frame(FI_SIZE);
		k = fit < fanin.batch ? (uint32_t)fit : fanin.batch;
		if (k > run_.per - seq)
			k = (uint32_t)(run_.per - seq);
		for (uint32_t done = 0; done < k;) {
			uint32_t m = k - done < stage ? k - done : stage;
			for (uint32_t i = 0; i < m; i++)
				rec_fill(buf + (size_t)i * FI_SIZE, FI_SIZE, base + seq + i);
			r = mmapq_put_many(q, buf, FI_SIZE, m);
			if (r == -ENOBUFS)
				break; /* another producer took the room: reserve again */
			if (r <= 0)
				return child_fail("p%d: mmapq_put_many of %" PRIu32 " at record %" PRIu64 ": %d (%s)", w,
				                  m, seq, r, r < 0 ? mmapq_strerror(r) : "none");
			done += (uint32_t)r;
			seq += (uint64_t)r;
			if ((uint32_t)r < m)
				break;
		}
		r = mmapq_publish(q);
		if (r < 0)
			return child_fail("p%d: mmapq_publish at record %" PRIu64 ": %s", w, seq, mmapq_strerror(r));
	}
	cpu_window(1 + w, true);
	mmapq_close(q);
	free(buf);
	return 0;
}

/* The reader of the mmapq row and of the daemon's queue. */
static int fi_mmapq_reader(struct cell *c)
{
	struct mmapq *q = fi_open(MMAPQ_ROLE_CONSUMER, NULL,
	                          run_.t == FI_SOCKET ? MMAPQ_FORMAT_BINARY : MMAPQ_FORMAT_LINE);
	uint32_t per_call = fanin.batch < FI_STAGE ? fanin.batch : FI_STAGE;
	struct mmapq_record *recs = xalloc(sizeof(*recs) * per_call);
	struct fi_check k = {0};
	uint64_t total = run_.per * (uint64_t)run_.nw, deadline;
	int r;

	(void)c;
	if (!q)
		return EXIT_FAIL;
	barrier();
	cpu_window(0, false);
	deadline = now_ns() + FAR_NS;
	while (k.got < total) {
		uint32_t n = 0, take;
		r = mmapq_available(q, deadline, &n);
		if (r < 0)
			return child_fail("fan-in %s: mmapq_available at record %" PRIu64 ": %s", fanin_key[run_.t],
			                  k.got, mmapq_strerror(r));
		take = n < fanin.batch ? n : fanin.batch;
		for (uint32_t done = 0, m; done < take; done += m) {
			m = take - done < per_call ? take - done : per_call;
			r = mmapq_get_many(q, done, m, recs);
			if (r != (int)m)
				return child_fail("fan-in %s: mmapq_get_many of %" PRIu32 " at record %" PRIu64 ": %d (%s)",
				                  fanin_key[run_.t], m, k.got, r, r < 0 ? mmapq_strerror(r) : "fewer");
			for (uint32_t i = 0; i < m; i++)
				if ((r = fi_take(&k, recs[i].data, recs[i].len)) != 0)
					return r;
		}
		r = mmapq_release(q, take);
		if (r < 0)
			return child_fail("fan-in %s: mmapq_release at record %" PRIu64 ": %s", fanin_key[run_.t],
			                  k.got, mmapq_strerror(r));
	}
	r = fi_reader_done(&k);
	mmapq_close(q);
	free(recs);
	return r;
}

/* ---- POSIX mq ------------------------------------------------------------------ */

static int fi_mq_writer(struct cell *c)
{
	int w = c->cons_ix;
	unsigned char *buf = xalloc(FI_SIZE);
	uint64_t base = (uint64_t)w << FI_SHIFT;

	barrier();
	cpu_window(1 + w, false);
	fi_started();
	for (uint64_t seq = 0; seq < run_.per; seq++) {
		rec_fill(buf, FI_SIZE, base + seq);
		while (mq_send(run_.mq, (const char *)buf, FI_SIZE, 0) < 0)
			if (errno != EINTR)
				return child_fail("writer %d: mq_send record %" PRIu64 ": %s", w, seq, strerror(errno));
	}
	cpu_window(1 + w, true);
	free(buf);
	return 0;
}

static int fi_mq_reader(struct cell *c)
{
	unsigned char *buf = xalloc(FI_SIZE);
	struct fi_check k = {0};
	uint64_t total = run_.per * (uint64_t)run_.nw;
	int r;

	(void)c;
	barrier();
	cpu_window(0, false);
	while (k.got < total) {
		ssize_t n;
		while ((n = mq_receive(run_.mq, (char *)buf, FI_SIZE, NULL)) < 0)
			if (errno != EINTR)
				return child_fail("fan-in mq: mq_receive at record %" PRIu64 ": %s", k.got, strerror(errno));
		if ((r = fi_take(&k, buf, (size_t)n)) != 0)
			return r;
	}
	r = fi_reader_done(&k);
	free(buf);
	return r;
}

/* ---- one AF_UNIX socket to mmapq-producer ------------------------------------------ */

static int write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* Records framed as format binary wants them (a 4-byte big-endian length,
 * then the bytes), a batch per write; then the end of input, and the
 * producer's last line, which must say every record is published. */
static int fi_sock_writer(struct cell *c)
{
	int w = c->cons_ix;
	const size_t fr = 4 + FI_SIZE;
	unsigned char *buf = xalloc(fr * fanin.batch);
	uint64_t base = (uint64_t)w << FI_SHIFT, published = 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	char reply[1024];
	size_t got = 0;
	char *ok;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	memcpy(sa.sun_path, run_.sock, sizeof(sa.sun_path));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return child_fail("writer %d: connect %s: %s", w, run_.sock, strerror(errno));
	for (uint32_t i = 0; i < fanin.batch; i++) {
		unsigned char *f = buf + i * fr;
		f[0] = f[1] = f[2] = 0;
		f[3] = FI_SIZE;
	}
	barrier();
	cpu_window(1 + w, false);
	fi_started();
	for (uint64_t seq = 0; seq < run_.per;) {
		uint32_t k = run_.per - seq < fanin.batch ? (uint32_t)(run_.per - seq) : fanin.batch;
		for (uint32_t i = 0; i < k; i++)
			rec_fill(buf + i * fr + 4, FI_SIZE, base + seq + i);
		if (write_all(fd, buf, k * fr) < 0)
			return child_fail("writer %d: write at record %" PRIu64 ": %s", w, seq, strerror(errno));
		seq += k;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		return child_fail("writer %d: shutdown: %s", w, strerror(errno));
	for (;;) {
		ssize_t k = read(fd, reply + got, sizeof(reply) - 1 - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return child_fail("writer %d: reading the replies: %s", w, strerror(errno));
		if (k == 0 || got + (size_t)k == sizeof(reply) - 1) {
			got += (size_t)k;
			break;
		}
		got += (size_t)k;
	}
	reply[got] = '\0';
	cpu_window(1 + w, true);
	close(fd);
	ok = strstr(reply, "OK published=");
	if (!ok || sscanf(ok, "OK published=%" SCNu64, &published) != 1 || published != run_.per)
		return child_fail("writer %d: the producer replied '%.200s' (%" PRIu64 " records sent)", w, reply,
		                  run_.per);
	free(buf);
	return 0;
}

/* The producer's configuration: the socket input, format binary, the
 * mmapq row's ring, ACK lines off (the writers read only the last line). */
static char *fi_config(void)
{
	char *path = tu_path(tmpdir, "fanin.ini");
	FILE *f = fopen(path, "w");

	if (!f) {
		note("%s: %s", path, strerror(errno));
		exit(EXIT_FAIL);
	}
	fprintf(f, "[queue]\npath = %s\nsize = %" PRIu64 "\nmax_record = %u\nformat = binary\nsync = never\n"
	        "[producer]\ninput = socket\nsocket = %s\non_full = block\nack_interval = 0\nack_records = 0\n"
	        "[log]\nlevel = warning\nstats_interval = 0\n", run_.qpath, fanin.ring_bytes, FI_SIZE,
	        run_.sock);
	fclose(f);
	return path;
}

/* mmapq-producer with the socket input, told to say READY=1 on a socket
 * of ours (NOTIFY_SOCKET, as systemd does): once said, it listens.  Its
 * pid, or -1 (why says why). */
static pid_t fi_daemon_start(const char *cfg, const char *logp, char *why, size_t whylen)
{
	char *prod = tu_path(bin_dir, "mmapq-producer"), *npath = tu_path(tmpdir, "fanin.notify");
	char *argv[] = {prod, (char *)"--config", (char *)cfg, NULL};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int nfd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int log_fd = open(logp, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	uint64_t deadline = now_ns() + FI_READY_MS * 1000000ull;
	pid_t pid = -1;
	bool ready = false;

	if (strlen(npath) >= sizeof(sa.sun_path) || strlen(run_.sock) + 1 >= sizeof(sa.sun_path)) {
		snprintf(why, whylen, "%s: longer than a unix socket's path may be", tmpdir);
		goto out;
	}
	memcpy(sa.sun_path, npath, strlen(npath) + 1);
	unlink(npath);
	if (nfd < 0 || log_fd < 0 || null_fd < 0 || bind(nfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		snprintf(why, whylen, "set-up of the producer: %s", strerror(errno));
		goto out;
	}
	pid = fork_pinned(-1);
	if (pid == 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		setenv("NOTIFY_SOCKET", npath, 1);
		/* the rest of what spawn() clears: no watchdog, no passed socket */
		unsetenv("WATCHDOG_USEC");
		unsetenv("WATCHDOG_PID");
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("MMAPQ_FAULT");
		execv(argv[0], argv);
		fprintf(stderr, "exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	if (pid < 0) {
		snprintf(why, whylen, "fork: %s", strerror(errno));
		goto out;
	}
	while (!ready) {
		struct pollfd pf = {.fd = nfd, .events = POLLIN};
		uint64_t now = now_ns();
		char msg[512];
		ssize_t k;
		if (now >= deadline || poll(&pf, 1, (int)((deadline - now) / 1000000u) + 1) == 0) {
			snprintf(why, whylen, "mmapq-producer did not say READY=1 within %d s; see %s",
			         FI_READY_MS / 1000, logp);
			break;
		}
		k = recv(nfd, msg, sizeof(msg) - 1, MSG_DONTWAIT);
		if (k > 0) {
			msg[k] = '\0';
			ready = strstr(msg, "READY=1") != NULL;
		}
	}
	if (!ready) {
		tu_kill(pid);
		tu_wait(pid, FI_STOP_MS);
		pid = -1;
	}
out:
	if (nfd >= 0)
		close(nfd);
	if (log_fd >= 0)
		close(log_fd);
	if (null_fd >= 0)
		close(null_fd);
	unlink(npath);
	free(npath);
	free(prod);
	return pid;
}

/* Run time of pid in ns (/proc/PID/schedstat), or -1. */
static double fi_run_s(pid_t pid)
{
	char p[64];
	unsigned long long ns;
	FILE *f;
	int k;

	snprintf(p, sizeof(p), "/proc/%d/schedstat", (int)pid);
	f = fopen(p, "r");
	if (!f)
		return -1;
	k = fscanf(f, "%llu", &ns);
	fclose(f);
	return k == 1 ? (double)ns / 1e9 : -1;
}

/* ---- one run ------------------------------------------------------------------- */

static void fi_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fi_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(fanin.why, sizeof(fanin.why), fmt, ap);
	va_end(ap);
}

/* One run of transport t with the k-th count of writers, n records in all:
 * its seconds, or -1 (fanin.why says why).  The rates go into round `run`
 * (-1: a calibration run, kept nowhere). */
static double fi_once(int t, int k, uint64_t n, int run)
{
	int nw = fanin_writers[k], np = 1 + nw;
	struct cell *cp[1 + FANIN_MAX];
	child_fn fn[1 + FANIN_MAX];
	double cpu[2 + FANIN_MAX], el, d0 = 0, d1 = 0;
	int where[2 + FANIN_MAX];
	char *cfg = NULL, *logp = tu_path(tmpdir, "fanin-producer.log");
	pid_t daemon = -1;
	int r, ret = -1;

	memset(&run_, 0, sizeof(run_));
	run_.t = t;
	run_.nw = nw;
	run_.per = n / (uint64_t)nw;
	run_.mq = (mqd_t)-1;
	snprintf(run_.qpath, sizeof(run_.qpath), "%s/fanin.q", tmpdir);
	snprintf(run_.sock, sizeof(run_.sock), "%s/fanin.sock", tmpdir);
	unlink(run_.qpath);
	for (int i = 0; i < np; i++) {
		memset(&fi_cells[i], 0, sizeof(fi_cells[i]));
		cell_init(&fi_cells[i]);
		fi_cells[i].cons_ix = i - 1;
		cp[i] = &fi_cells[i];
	}
	if (t == FI_MQ) {
		char name[64];
		snprintf(name, sizeof(name), "/mmapq-bench-fanin-%d", (int)getpid());
		fanin.mq_depth = mq_open_deepest(name, FI_SIZE, &run_.mq);
		if (fanin.mq_depth < 0) {
			fi_fail("POSIX mq of %u B: %s", FI_SIZE, fanin.mq_depth == -1 ? "over msgsize_max" :
			        strerror(errno));
			goto out;
		}
		mq_unlink(name); /* the descriptor (forked with the children) keeps it */
	} else if (t == FI_SOCKET) {
		char why[256];
		cfg = fi_config();
		daemon = fi_daemon_start(cfg, logp, why, sizeof(why));
		if (daemon < 0) {
			fi_fail("%s", why);
			goto out;
		}
		d0 = fi_run_s(daemon);
	}
	fn[0] = t == FI_MQ ? fi_mq_reader : fi_mmapq_reader;
	for (int i = 1; i < np; i++)
		fn[i] = t == FI_MMAPQ ? fi_mmapq_writer : t == FI_MQ ? fi_mq_writer : fi_sock_writer;
	r = run_group(np, fn, cp, fanin.cpu[k], fanin.why, sizeof(fanin.why));
	if (daemon > 0) {
		struct child_use use;
		int code;
		d1 = fi_run_s(daemon);
		kill(daemon, SIGTERM);
		code = wait_one(daemon, FI_STOP_MS, &use);
		if (r == 0 && code != 0) {
			fi_fail("mmapq-producer exited %d at SIGTERM; see %s", code, logp);
			goto out;
		}
	}
	if (r < 0)
		goto out;
	if (ctl->verified != (uint64_t)nw * run_.per) {
		fi_fail("%s, %d writers: read %" PRIu64 " of %" PRIu64, fanin_key[t], nw, ctl->verified,
		        (uint64_t)nw * run_.per);
		goto out;
	}
	total_verified += ctl->verified;
	el = (double)(ctl->t_end - ctl->t_start) / 1e9;
	if (el < 1e-9)
		el = 1e-9;
	ret = 0;
	if (run < 0)
		goto out;
	fanin.rps[t][k][run] = (double)ctl->verified / el;
	{
		double all = 0;
		int m = np;
		for (int i = 0; i < np; i++) {
			cpu[i] = ctl->cpu_s[i];
			where[i] = fanin.cpu[k][i];
		}
		if (daemon > 0 && d0 >= 0 && d1 >= d0) {
			cpu[m] = d1 - d0;
			where[m++] = -1;
		}
		for (int i = 0; i < m; i++)
			all += cpu[i];
		busy_run[t][k][run] = all / el;
		bound_run[t][k][run] = cpu_bound(cpu, where, m, ctl->verified, fanin.ncpus > 0 ? fanin.ncpus : 1);
	}
out:
	if (run_.mq != (mqd_t)-1)
		mq_close(run_.mq);
	unlink(run_.qpath);
	unlink(run_.sock);
	free(cfg);
	free(logp);
	return ret < 0 ? -1 : el;
}

struct fi_cal {
	int t;
};

static double fi_once_single(uint64_t n, void *arg)
{
	const struct fi_cal *a = arg;
	return fi_once(a->t, 0, n, -1);
}

static void fi_failed(void)
{
	fanin.failed = true;
	failed = true;
	note("fan-in: FAILED: %s", fanin.why);
}

void run_fanin(void)
{
	struct load_mark m;

	load_mark(&m);
	fanin.ran = true;
	fanin.size = FI_SIZE;
	fanin.ring_bytes = ring_bytes(FI_SIZE);
	fanin.cap = ring_cap(FI_SIZE);
	fanin.batch = ring_batch(fanin.cap, opt.batch);
	fanin.ncpus = usable_cpus(fi_cpu_list);
	for (int k = 0; k < NFANIN; k++)
		for (int i = 0; i <= fanin_writers[k]; i++)
			fanin.cpu[k][i] = fanin.ncpus >= 2 ? fi_cpu_list[i % fanin.ncpus] : -1;
	/* n divides among 1, 2 and 4 writers: a multiple of 4 */
	for (int t = 0; t < NFI_T; t++) {
		struct fi_cal a = {t};
		if (opt.quick) {
			fanin.n[t] = quick_n(FI_SIZE);
		} else if (calibrate(fi_once_single, &a, &fanin.n[t]) < 0) {
			fi_failed();
			goto out;
		}
		fanin.n[t] = (fanin.n[t] + 3) / 4 * 4;
	}
	/* every case once a round: a slow spell of the machine hits all alike */
	for (int run = 0; run < opt.runs; run++)
		for (int t = 0; t < NFI_T; t++)
			for (int k = 0; k < NFANIN; k++) {
				if (fi_once(t, k, fanin.n[t], run) < 0) {
					fi_failed();
					goto out;
				}
				fanin.nruns[t][k]++;
			}
	for (int t = 0; t < NFI_T; t++)
		for (int k = 0; k < NFANIN; k++) {
			spread(fanin.rps[t][k], fanin.nruns[t][k], &fanin.med_rps[t][k], &fanin.lo_rps[t][k],
			       &fanin.hi_rps[t][k]);
			spread(busy_run[t][k], fanin.nruns[t][k], &fanin.busy[t][k], &fanin.busy_lo[t][k],
			       &fanin.busy_hi[t][k]);
			ceiling_spread(bound_run[t][k], fanin.nruns[t][k], fanin.med_rps[t][0], &fanin.ceiling[t][k],
			               &fanin.ceiling_lo[t][k], &fanin.ceiling_hi[t][k]);
		}
	for (int t = 0; t < NFI_T; t++)
		for (int k = 0; k < NFANIN; k++) {
			double x, lo, hi;
			fanin_ratio(t, k, &x, &lo, &hi);
			note("fan-in, %s, %d writer%s: %.0f records/s (%.2fx [%.2f-%.2f] of one); %.2f of %d CPUs busy;"
			     " the machine allows ~%.2fx", fanin_label[t], fanin_writers[k], fanin_writers[k] > 1 ? "s" : "",
			     fanin.med_rps[t][k], x, lo, hi, fanin.busy[t][k], fanin.ncpus, fanin.ceiling[t][k]);
		}
out:
	load_section_end("fan-in", &m);
}

int fanin_ratio(int t, int k, double *med, double *lo, double *hi)
{
	*med = *lo = *hi = 0;
	if (!fanin.ran || fanin.failed)
		return 0;
	return ratio_spread(fanin.rps[t][k], fanin.nruns[t][k], fanin.rps[t][0], fanin.nruns[t][0], med, lo, hi);
}

int fanin_over(int peer, int k, double *med, double *lo, double *hi)
{
	*med = *lo = *hi = 0;
	if (!fanin.ran || fanin.failed)
		return 0;
	return ratio_spread(fanin.rps[FI_MMAPQ][k], fanin.nruns[FI_MMAPQ][k], fanin.rps[peer][k],
	                    fanin.nruns[peer][k], med, lo, hi);
}
