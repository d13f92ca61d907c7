/* SPDX-License-Identifier: MIT */
/*
 * fuzz_clients -- libFuzzer target: the producer's socket server
 * (daemons/producer/clients.c, with source.c, input.c and protocol.c) driven
 * by clients that do anything in any order: connect, send records and junk
 * in pieces, read their replies through windows of any size or not at all,
 * shut down either side, close with replies unread (a reset), while the
 * queue fills and drains and the clock jumps.  Real sockets (a listening
 * socket in the abstract namespace, accepted by the server's own
 * accept_clients), a real queue file on tmpfs, a consumer in this process.
 *
 * Input:
 *   byte 0  a ring of 64, 256 or 16384 bytes, 4, 16 or 1024 int records
 *           (bits 0-1); on_full = drop (bit 2);
 *           client_timeout 0..3 s (bits 3-4); ack_records 0..3 (bits 5-6);
 *           ack_interval 0 or 1000 ms (bit 7)
 *   rest    actions, each an opcode byte (client index in its high bits)
 *           and, for some, one argument byte:
 *     0 connect a new client        1 send k whole records   2 send junk
 *     3 read up to n reply bytes    4 shutdown(SHUT_WR)      5 shutdown(SHUT_RD)
 *     6 shutdown(SHUT_RDWR)         7 close                  8 server turn
 *     9 the clock jumps n x 100 ms  10 the consumer takes up to n records
 *
 * Every send is at most 512 bytes of whole records ("\nV\n", V = (client +
 * 1) * 10^9 + k for the client's k-th record) or junk (bytes that are no
 * digit and no sign, so junk never makes or changes a record): a unix
 * socket takes such a send whole or not at all.
 *
 * Invariants (checked while the consumer takes records, and once the
 * clients are gone and the server has read all it can):
 *   - every record in the queue is a whole V a client sent, and each
 *     client's records come in the order it sent them, none twice, none
 *     skipped: client c's records are exactly its 0th, 1st, ... (on_full =
 *     drop: a record may be missing, never reordered or repeated);
 *   - nothing acknowledged is lost: a client's records in the queue are at
 *     least the published= of every ACK, OK or FAIL line it read, and a
 *     client that read its OK line has exactly that many;
 *   - every reply line is well-formed (protocol_parse), its counts never
 *     go back, and OK or FAIL is the last line;
 *   - a client that read its OK line had every record it sent published
 *     (block mode); every client that can still read sees the server close
 *     its connection in the end, none is left hanging;
 *   - no crash, no out-of-bounds access, no leak; the server never blocks
 *     (every wait is a poll of 0 ms).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "fuzz_common.h"
#include "mmapq.h"
#include "producer/producer.h"
#include "producer/protocol.h"

#define SIMS      80         /* clients one input may make (64 places: some wait, some are evicted) */
#define SEND_MAX  512        /* bytes per send: a unix socket takes it whole or not at all */
#define V_BASE    UINT64_C(1000000000)

struct sim {
	int fd;                  /* -1: closed */
	bool shut_wr, shut_rd;
	bool reset;              /* closed with replies unread: the server may lose its bytes */
	uint64_t sent;           /* whole records sent */
	uint64_t seen;           /* 1 + the k of its last record the consumer took */
	uint64_t got;            /* its records the consumer took */
	char line[PROTOCOL_LINE_MAX + 1];
	size_t line_len;
	uint64_t acked;          /* the highest published= it read */
	bool last;               /* it read an OK or FAIL line */
	bool ok;                 /* ... an OK line */
	bool server_closed;      /* the server closed the connection ... */
	bool server_closed_early; /* ... without a last line (lost with the connection) */
	uint64_t ok_published;
};

static struct {
	struct producer p;
	struct mmapq *cons;
	struct sim sim[SIMS];
	unsigned n_sim;
	uint64_t now;
	struct sockaddr_un addr;
	socklen_t addr_len;
	char qpath[512];
	bool drop;
} F;

static uint64_t fuzz_clock(void)
{
	return F.now;
}

/* ---- the clients ---------------------------------------------------------- */

static void sim_send(struct sim *c, const char *buf, size_t n)
{
	ssize_t k;

	if (c->fd < 0 || c->shut_wr || !n)
		return;
	k = send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
	FUZZ_CHECK(k < 0 || (size_t)k == n, "a send of %zu bytes took %zd: the oracle assumes whole sends",
	           n, k);
}

static void sim_send_records(struct sim *c, unsigned idx, unsigned k)
{
	char buf[SEND_MAX];
	size_t n = 0;
	unsigned made = 0;

	while (made < k && n + 24 <= sizeof(buf)) {
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "\n%" PRIu64 "\n",
		                      (idx + 1) * V_BASE + c->sent + made);
		made++;
	}
	if (c->fd < 0 || c->shut_wr)
		return;
	if (send(c->fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n)
		c->sent += made;
}

static void sim_send_junk(struct sim *c, const uint8_t *d, size_t n)
{
	static const char alphabet[] = "xyz#!@~.,:;=?^&*()[]{}<>|/\\\"' \t\n\r\v\f";
	char buf[SEND_MAX];

	if (n > sizeof(buf))
		n = sizeof(buf);
	for (size_t i = 0; i < n; i++)
		buf[i] = alphabet[d[i] % (sizeof(alphabet) - 1)];
	/* a junk send ends at a separator: the next record stays whole */
	if (n)
		buf[n - 1] = '\n';
	sim_send(c, buf, n);
}

static void sim_line(struct sim *c, const char *line)
{
	struct protocol_reply r;

	FUZZ_CHECK(protocol_parse(line, &r) == 0, "malformed reply line '%s'", line);
	FUZZ_CHECK(!c->last, "a reply line after the last one: '%s'", line);
	switch (r.kind) {
	case PROTOCOL_ERR:
		return;
	case PROTOCOL_ACK:
	case PROTOCOL_OK:
	case PROTOCOL_FAIL:
		FUZZ_CHECK(r.counts.published >= c->acked, "published went back: '%s' after %" PRIu64,
		           line, c->acked);
		c->acked = r.counts.published;
		if (r.kind != PROTOCOL_ACK)
			c->last = true;
		if (r.kind == PROTOCOL_OK) {
			c->ok = true;
			c->ok_published = r.counts.published;
		}
		return;
	case PROTOCOL_OTHER:
		FUZZ_CHECK(false, "a reply line of no known kind: '%s'", line);
	}
}

static void sim_read(struct sim *c, size_t max)
{
	char buf[4096];
	ssize_t k;

	if (c->fd < 0 || c->shut_rd)
		return;
	if (max > sizeof(buf))
		max = sizeof(buf);
	k = recv(c->fd, buf, max, MSG_DONTWAIT);
	if (k == 0 || (k < 0 && errno != EAGAIN)) {
		c->server_closed = true;
		c->server_closed_early = !c->last;
	}
	for (ssize_t i = 0; i < k; i++) {
		if (buf[i] == '\n') {
			c->line[c->line_len] = '\0';
			sim_line(c, c->line);
			c->line_len = 0;
			continue;
		}
		FUZZ_CHECK(c->line_len < PROTOCOL_LINE_MAX - 1, "a reply line longer than %u bytes",
		           PROTOCOL_LINE_MAX);
		c->line[c->line_len++] = buf[i];
	}
}

static void sim_close(struct sim *c)
{
	int unread = 0;

	if (c->fd < 0)
		return;
	/* replies unread at the close: the server's next read is a reset */
	if (ioctl(c->fd, FIONREAD, &unread) == 0 && unread > 0)
		c->reset = true;
	close(c->fd);
	c->fd = -1;
}

static void sim_connect(void)
{
	struct sim *c;

	if (F.n_sim >= SIMS)
		return;
	c = &F.sim[F.n_sim++];
	*c = (struct sim){.fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)};
	FUZZ_CHECK(c->fd >= 0, "socket: %s", strerror(errno));
	/* the backlog is the kernel's: a connect may wait there (EAGAIN: full) */
	if (connect(c->fd, (struct sockaddr *)&F.addr, F.addr_len) < 0) {
		FUZZ_CHECK(errno == EAGAIN, "connect: %s", strerror(errno));
		close(c->fd);
		c->fd = -1;
	}
}

/* ---- the server: one turn of mmapq-producer's loop (main.c's run), its waits
 * polls of 0 ms ---- */

static void server_turn(void)
{
	struct producer *p = &F.p;
	struct pollfd pf[MAX_LISTEN + MAX_CLIENTS];
	unsigned n;
	int r;

	if (!producer_may_read(p)) {
		FUZZ_CHECK(clients_serve_while_full(p) == 0, "serve while full: %s", strerror(-p->error));
		FUZZ_CHECK(producer_refill(p, 0) == 0, "refill: %s", strerror(-p->error));
		if (!producer_may_read(p))
			return;
		clients_room(p);
	}
	sources_finish(p);
	n = clients_poll_set(p, pf, producer_may_read(p));
	r = poll(pf, n, 0);
	if (r < 0 && errno == EINTR)
		r = 0; /* libFuzzer's timer (SIGALRM): as if nothing were ready */
	FUZZ_CHECK(r >= 0, "poll: %s", strerror(errno));
	if (r > 0)
		FUZZ_CHECK(clients_poll_done(p, pf) == 0, "the server failed: %s", strerror(-p->error));
	sources_finish(p);
	FUZZ_CHECK(p->error == 0, "the server failed: %s", strerror(-p->error));
	if (producer_may_read(p))
		clients_expire(p);
	FUZZ_CHECK(mmapq_publish(p->q) >= 0, "publish");
	FUZZ_CHECK(producer_refill(p, 0) == 0, "refill");
	producer_published(p);
	clients_ack(p, NULL);
}

/* ---- the consumer ----------------------------------------------------------- */

/* Up to max records taken and checked; how many. */
static uint32_t consume(uint32_t max)
{
	uint32_t avail = 0;
	struct mmapq_record r;
	int64_t v;
	int rc = mmapq_available(F.cons, 0, &avail);

	if (rc == -EAGAIN)
		return 0;
	FUZZ_CHECK(rc == 0, "the consumer: %s", mmapq_strerror(rc));
	if (avail > max)
		avail = max;
	for (uint32_t i = 0; i < avail; i++) {
		uint64_t idx, k;

		FUZZ_CHECK(mmapq_get(F.cons, i, &r) == 0 && r.len == sizeof(v), "get");
		memcpy(&v, r.data, sizeof(v));
		idx = (uint64_t)v / V_BASE;
		k = (uint64_t)v % V_BASE;
		FUZZ_CHECK(v > 0 && idx >= 1 && idx <= F.n_sim, "record %" PRIu64 " is %" PRId64
		           ": no client sent it", r.seq, v);
		struct sim *c = &F.sim[idx - 1];
		FUZZ_CHECK(k < c->sent, "record %" PRId64 ": client %" PRIu64 " sent only %" PRIu64, v,
		           idx - 1, c->sent);
		if (F.drop)
			FUZZ_CHECK(k >= c->seen, "record %" PRId64 " of client %" PRIu64 " after its %" PRIu64
			           "th: out of order or twice", v, idx - 1, c->seen);
		else
			FUZZ_CHECK(k == c->seen, "record %" PRId64 " of client %" PRIu64 " where its %" PRIu64
			           "th was due: lost, out of order or twice", v, idx - 1, c->seen);
		c->seen = k + 1;
		c->got++;
	}
	FUZZ_CHECK(mmapq_release(F.cons, avail) == 0, "release");
	return avail;
}

/* ---- one input ------------------------------------------------------------------- */

static void setup(uint8_t cfg)
{
	static const uint64_t sizes[4] = {64, 256, 16384, 256};
	struct producer *p = &F.p;
	struct mmapq_params pp = {.role = MMAPQ_ROLE_PRODUCER, .max_record = 8,
	                          .format = MMAPQ_FORMAT_INT, .file_mode = 0600};
	struct mmapq_params cp;
	struct mmapq_error err;
	static unsigned serial;
	int fd;

	memset(&F, 0, sizeof(F));
	snprintf(F.qpath, sizeof(F.qpath), "%s/q%u", fuzz_tmpdir(), serial);
	pp.path = F.qpath;
	pp.size = sizes[cfg & 3];
	cp = pp;
	cp.role = MMAPQ_ROLE_CONSUMER;
	FUZZ_CHECK(mmapq_open(&pp, &p->q, &err) == 0, "producer open: %s", err.msg);
	FUZZ_CHECK(mmapq_open(&cp, &F.cons, &err) == 0, "consumer open: %s", err.msg);
	F.drop = cfg & 4;
	p->cfg.format = MMAPQ_FORMAT_INT;
	p->cfg.size = pp.size;
	p->cfg.max_record = pp.max_record;
	p->cfg.on_full = F.drop ? MMAPQ_ON_FULL_DROP : MMAPQ_ON_FULL_BLOCK;
	p->cfg.client_timeout = (cfg >> 3) & 3;
	p->cfg.ack_records = (cfg >> 5) & 3;
	p->cfg.ack_interval = cfg & 0x80 ? 1000 : 0;
	p->input = IN_SOCKET;
	p->bad_limit = (struct log_limit)LOG_LIMIT_INIT("bad input", 10, 20);
	p->drop_limit = (struct log_limit)LOG_LIMIT_INIT("records dropped", 10, 1);
	p->accept_limit = (struct log_limit)LOG_LIMIT_INIT("accept failures", 10, 1);
	p->gone_limit = (struct log_limit)LOG_LIMIT_INIT("client connections failed", 10, 5);
	p->clock = fuzz_clock;
	p->buf = malloc(READ_CHUNK);
	FUZZ_CHECK(p->buf, "malloc");
	F.now = 1000000000u;

	F.addr.sun_family = AF_UNIX;
	snprintf(F.addr.sun_path + 1, sizeof(F.addr.sun_path) - 1, "mmapq-fuzz-%d-%u", (int)getpid(),
	         serial++);
	F.addr_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + strlen(F.addr.sun_path + 1));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&F.addr, F.addr_len) == 0 && listen(fd, 8) == 0,
	           "listen: %s", strerror(errno));
	p->listen_fd[p->n_listen++] = fd;
	FUZZ_CHECK(producer_refill(p, 0) == 0, "refill");
}

/* Connections waiting in the listening socket's backlog. */
static bool backlog(void)
{
	struct pollfd pf = {.fd = F.p.listen_fd[0], .events = POLLIN};

	return poll(&pf, 1, 0) == 1;
}

/* The clients end their input (half-close: they go on reading), the server
 * reads what is left and answers, the consumer takes it all; time passes
 * (a paused accept resumes). */
static void settle(void)
{
	for (unsigned i = 0; i < F.n_sim; i++) {
		struct sim *c = &F.sim[i];
		if (c->fd >= 0 && !c->shut_wr && shutdown(c->fd, SHUT_WR) == 0)
			c->shut_wr = true;
	}
	for (int turn = 0;; turn++) {
		uint64_t tail = mmapq_next_seq(F.p.q);
		uint32_t took;

		server_turn();
		took = consume(UINT32_MAX);
		for (unsigned i = 0; i < F.n_sim; i++)
			for (int k = 0; k < 16 && F.sim[i].fd >= 0 && !F.sim[i].server_closed; k++)
				sim_read(&F.sim[i], 4096);
		F.now += 100000000u;
		if (!F.p.n_src && !backlog() && mmapq_next_seq(F.p.q) == tail && !took)
			break;
		FUZZ_CHECK(turn < 4096, "%u clients still open after %d turns", F.p.n_src, turn);
	}
}

static void check_end(void)
{
	for (unsigned i = 0; i < F.n_sim; i++) {
		struct sim *c = &F.sim[i];
		FUZZ_CHECK(c->got >= c->acked, "client %u: %" PRIu64 " of its records in the queue,"
		           " but it was told %" PRIu64 " were published", i, c->got, c->acked);
		FUZZ_CHECK(!c->ok || c->got == c->ok_published, "client %u: OK published=%" PRIu64
		           " but %" PRIu64 " of its records are in the queue", i, c->ok_published, c->got);
		/* a client that read its OK line had every record it sent
		 * published (block mode: none dropped; junk is no record) */
		if (c->ok && !F.drop)
			FUZZ_CHECK(c->got == c->sent, "client %u was told OK published=%" PRIu64 " after"
			           " sending %" PRIu64 " records", i, c->ok_published, c->sent);
		/* nobody is left hanging: a client that can read saw the
		 * server close its connection */
		if (c->fd >= 0 && !c->shut_rd)
			FUZZ_CHECK(c->server_closed, "client %u: its connection is still open at the end", i);
	}
}

static void teardown(void)
{
	clients_close(&F.p);
	for (unsigned i = 0; i < F.n_sim; i++)
		if (F.sim[i].fd >= 0)
			close(F.sim[i].fd);
	free(F.p.buf);
	mmapq_close(F.cons);
	mmapq_close(F.p.q);
	unlink(F.qpath);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	signal(SIGPIPE, SIG_IGN);
	log_set_level((enum mmapq_log_level)0); /* nothing: the invariants speak */
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	size_t i = 1;

	if (n < 1)
		return 0;
	setup(d[0]);
	while (i < n) {
		uint8_t op = d[i] & 15;
		unsigned who = F.n_sim ? (unsigned)(d[i] >> 4) % F.n_sim : 0;
		struct sim *c = &F.sim[who];
		unsigned arg = i + 1 < n ? d[i + 1] : 0;

		i++;
		if (!F.n_sim && op != 0 && op != 8 && op != 9 && op != 10)
			continue;
		switch (op) {
		case 0:
			sim_connect();
			break;
		case 1:
			sim_send_records(c, who, arg % 24 + 1);
			i++;
			break;
		case 2: {
			size_t len = arg % 64 + 1;
			if (i + 1 + len > n)
				len = n - i - 1 < n ? (n > i + 1 ? n - i - 1 : 0) : 0;
			sim_send_junk(c, d + i + 1, len);
			i += 1 + len;
			break;
		}
		case 3:
			sim_read(c, (size_t)arg * 16 + 1);
			i++;
			break;
		case 4:
			if (c->fd >= 0 && shutdown(c->fd, SHUT_WR) == 0)
				c->shut_wr = true;
			break;
		case 5:
			if (c->fd >= 0 && shutdown(c->fd, SHUT_RD) == 0)
				c->shut_rd = true;
			break;
		case 6:
			if (c->fd >= 0 && shutdown(c->fd, SHUT_RDWR) == 0)
				c->shut_wr = c->shut_rd = true;
			break;
		case 7:
			sim_close(c);
			break;
		case 9:
			F.now += (uint64_t)(arg % 40 + 1) * 100000000u;
			i++;
			break;
		case 10:
			consume(arg + 1);
			i++;
			break;
		default:
			server_turn();
			break;
		}
	}
	settle();
	check_end();
	teardown();
	return 0;
}
