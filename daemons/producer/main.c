/* SPDX-License-Identifier: MIT */
/*
 * mmapq-producer -- reads records and publishes them into the queue.
 *
 * Inputs ([producer] input): stdin (input.c); socket (clients connect to a
 * Unix stream socket, several at once; under systemd the socket comes from
 * mmapq-producer.socket via sd_listen_fds: clients.c); generate (a counter
 * whose values are the records' own sequence numbers, here).
 *
 * Start-up, in this order: standard descriptors, options, config, signals,
 * queue (create or attach, validate, take the producer role), input,
 * READY=1.  Shutdown in reverse: STOPPING=1, complete the record stdin was
 * in the middle of (bounded), publish everything read, tell clients what
 * was published, close the input, the queue (munmap, locks dropped).
 *
 * The loop: wait for room (block mode) or for input, read (at most what
 * fits), publish everything read, acknowledge, and again.  Signals are
 * blocked outside the waits, so none is lost between a look at
 * signals_stop() and a wait.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "attach.h"
#include "blocked.h"
#include "exit.h"
#include "fault.h"
#include "producer.h"
#include "protocol.h"
#include "signals.h"
#include "start.h"

/* The daemon around the producer: what only main.c needs. */
struct daemon {
	struct producer p;
	struct options opt;
	struct settings settings;
	unsigned closed_std;       /* standard descriptors closed at start (start_stdio) */
	uint64_t gen_start_ns, gen_done;
	uint64_t next_stats_ns, last_stats_tail, next_status_ns;
	struct rate_meter status_rate;
	struct sync_timer sync;    /* sync = interval */
	/* block mode: the wait for room under way (wait_ns CLOCK_MONOTONIC,
	 * wait_usec CLOCK_REALTIME, when it began; 0: none), and whether it is
	 * said (it lasted WAIT_SAY_NS) */
	uint64_t wait_ns, wait_usec;
	bool wait_said;
	/* inactive_timeout: when the table is looked at next, and since when
	 * (CLOCK_MONOTONIC) each entry's consumer, of that name, has been seen
	 * detached (0: attached, or not looked at yet) */
	uint64_t idle_look_ns;
	uint64_t idle_since_ns[MMAPQ_CONSUMERS_MAX];
	char idle_name[MMAPQ_CONSUMERS_MAX][MMAPQ_CONSUMER_NAME_MAX + 1];
};

/* ---- consumers not attached for their inactive_timeout ------------------- */

/* How often the table is looked at for consumers detached too long. */
#define IDLE_LOOK_NS 1000000000ull

/*
 * A registered consumer whose entry has an inactive_timeout (its [consumer:
 * NAME] inactive_timeout, which the consumer stores there when it attaches)
 * and that has not been attached for that long is removed, as `mmapqctl
 * consumer remove` does (which refuses one that attaches meanwhile), and
 * that is said.  The time counts from when this producer first saw it
 * detached: the file says when a consumer attached, not when it left, so a
 * consumer down when the producer starts gets its whole timeout again.
 * Looked at about once a second, from the loop (which comes round at least
 * that often, waiting for room or not).
 */
static void remove_idle_consumers(struct daemon *d)
{
	struct producer *p = &d->p;
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	uint64_t now = mmapq_now_ns();
	bool seen[MMAPQ_CONSUMERS_MAX] = {false};
	int n;

	if (now < d->idle_look_ns)
		return;
	d->idle_look_ns = now + IDLE_LOOK_NS;
	n = mmapq_consumers(p->q, cs, MMAPQ_CONSUMERS_MAX);
	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++) {
		uint32_t k = cs[i].index;
		struct mmapq_policy pol;

		if (k >= MMAPQ_CONSUMERS_MAX || cs[i].attached ||
		    mmapq_policy(p->q, (int32_t)k, &pol) < 0 || !pol.inactive_timeout_s)
			continue;
		seen[k] = true;
		if (!d->idle_since_ns[k] || strcmp(d->idle_name[k], cs[i].name)) {
			d->idle_since_ns[k] = now;
			memcpy(d->idle_name[k], cs[i].name, sizeof(d->idle_name[k]));
		}
		if (now - d->idle_since_ns[k] >= (uint64_t)pol.inactive_timeout_s * 1000000000u) {
			struct mmapq_params qp = attach_params(&p->cfg, MMAPQ_ROLE_CONSUMER);
			struct mmapq_error err;
			int r;

			qp.consumer = cs[i].name;
			r = mmapq_consumer_remove(&qp, &err);
			if (r >= 0)
				log_notice("consumer '%s' removed: not attached for its inactive_timeout of %"
				           PRIu32 " s; the %d records it had not consumed are no longer kept"
				           " for it", cs[i].name, pol.inactive_timeout_s, r);
			else if (r != -EBUSY && r != -ENOENT)
				log_warning("cannot remove consumer '%s', not attached for its"
				            " inactive_timeout of %" PRIu32 " s: %s", cs[i].name,
				            pol.inactive_timeout_s, err.msg);
			seen[k] = false; /* removed, attached meanwhile, or tried: counted afresh */
		}
	}
	for (uint32_t k = 0; k < MMAPQ_CONSUMERS_MAX; k++)
		if (!seen[k])
			d->idle_since_ns[k] = 0;
}

/* ---- the wait for room, said -------------------------------------------- */

/* A wait for room is said (a journal line, STATUS=) once it has lasted
 * this long: a shorter one is the ring doing its job for a consumer slower
 * than the input; one of a second means that the consumer holding the
 * oldest record released nothing for a second. */
#define WAIT_SAY_NS 1000000000ull

/* When the wait began, and who holds it back, into buf ("since 12:03:11:
 * consumer audit is ... behind, ..."): what the journal line and STATUS=
 * say. */
static const char *wait_text(struct daemon *d, char *buf, size_t size)
{
	struct blocked_info b = {0};
	char who[256], when[32];
	int r = blocked_read(d->p.q, &b);

	if (r < 0)
		snprintf(who, sizeof(who), "cannot tell which consumer holds it back: %s",
		         mmapq_strerror(r));
	else
		blocked_holder_text(&b, who, sizeof(who));
	/* the library's time when it has one: the one mmapqctl shows */
	blocked_clock(when, sizeof(when), r == 0 && b.since_usec ? b.since_usec : d->wait_usec);
	snprintf(buf, size, "since %s: %s", when, who);
	return buf;
}

/* STATUS= while a wait that is said lasts; false if none does. */
static bool wait_status(struct daemon *d)
{
	char text[400];

	if (!d->wait_said)
		return false;
	service_status("waiting for room %s", wait_text(d, text, sizeof(text)));
	return true;
}

/* After a slice of the wait: one that has lasted WAIT_SAY_NS is said, once. */
static void wait_look(struct daemon *d)
{
	char text[400];

	if (d->wait_said || !d->wait_ns || mmapq_now_ns() - d->wait_ns < WAIT_SAY_NS)
		return;
	d->wait_said = true;
	log_warning("waiting for room (the queue is full) %s", wait_text(d, text, sizeof(text)));
	wait_status(d);
	d->next_status_ns = mmapq_now_ns() + 1000000000u;
}

/* The wait is over (how: "room again", "stopping"): the line that says so,
 * with how long it lasted, if its start was said. */
static void wait_over(struct daemon *d, const char *how)
{
	if (d->wait_said) {
		char when[32];

		log_notice("%s: waited %.1f s for room (since %s)", how,
		           (double)(mmapq_now_ns() - d->wait_ns) / 1e9,
		           blocked_clock(when, sizeof(when), d->wait_usec));
		d->next_status_ns = 0; /* STATUS= says so at once */
	}
	d->wait_ns = d->wait_usec = 0;
	d->wait_said = false;
}

static void stats(struct daemon *d, int force)
{
	struct producer *p = &d->p;
	struct mmapq_status st;
	uint64_t now = mmapq_now_ns();

	log_limit_flush(&p->bad_limit, force);
	log_limit_flush(&p->drop_limit, force);
	log_limit_flush(&p->accept_limit, force);
	log_limit_flush(&p->gone_limit, force);
	if (!force && now < d->next_status_ns && now < d->next_stats_ns)
		return;
	if (mmapq_status(p->q, &st) < 0)
		return;
	if (now >= d->next_status_ns && !p->error) {
		/* Deleted or replaced: what we published stays in the old file,
		 * where a consumer still attached to it drains it; new input
		 * would be stranded.  Overwritten: nothing can be trusted. */
		int r = mmapq_check(p->q);
		if (r == -ESTALE || r == -EBADMSG) {
			log_error("%s: %s; stopping", mmapq_path(p->q),
			          r == -ESTALE ? mmapq_strerror(r) : "the header was overwritten while in use");
			p->error = r;
		}
	}
	/* depth: the ring bytes the records kept take, of the ring's size */
	if ((now >= d->next_status_ns || force) && wait_status(d)) {
		d->next_status_ns = now + 1000000000u;
	} else if (now >= d->next_status_ns || force) {
		char rate[32];
		service_status("published %" PRIu64 ", depth %" PRIu64 "/%" PRIu64 " bytes (%" PRIu64
		               " records), %s, dropped %" PRIu64 ", bad input %" PRIu64, st.tail,
		               st.used_bytes, st.size, st.tail - st.head,
		               rate_meter_update(&d->status_rate, st.tail, rate, sizeof(rate)),
		               st.producer.dropped, st.producer.bad_input);
		d->next_status_ns = now + 1000000000u;
	}
	if (p->cfg.stats_interval && (now >= d->next_stats_ns || force)) {
		log_info("published %" PRIu64 ", depth %" PRIu64 "/%" PRIu64 " bytes (%" PRIu64
		         " records), %.1f rec/s, dropped %" PRIu64 ", bad input %" PRIu64, st.tail,
		         st.used_bytes, st.size, st.tail - st.head,
		         (double)(st.tail - d->last_stats_tail) / p->cfg.stats_interval,
		         st.producer.dropped, st.producer.bad_input);
		d->last_stats_tail = st.tail;
	}
	if (now >= d->next_stats_ns)
		d->next_stats_ns = now + (uint64_t)(p->cfg.stats_interval ? p->cfg.stats_interval : 3600) *
		                         1000000000u;
}

/* ---- input = generate ---------------------------------------------------- */

/* Records due from the generator now (rate 0: as many as fit, at least
 * one), each as a frame of its own length: block mode puts none that does
 * not fit, and waits for room for it. */
static int generate(struct daemon *d)
{
	struct producer *p = &d->p;
	uint64_t due = UINT64_MAX;

	if (p->cfg.generate_rate) {
		uint64_t elapsed = mmapq_now_ns() - d->gen_start_ns;
		due = (uint64_t)((double)elapsed * p->cfg.generate_rate / 1e9) - d->gen_done;
	}
	for (uint64_t i = 0; i < due; i++) {
		int64_t v = (int64_t)mmapq_next_seq(p->q);
		char text[24];
		const void *rec = &v;
		uint32_t len = sizeof(v);
		int r;

		if (p->cfg.format != MMAPQ_FORMAT_INT) {
			len = (uint32_t)snprintf(text, sizeof(text), "%" PRId64, v);
			rec = text;
		}
		if (mmapq_frame_size(len) > p->room) {
			if (producer_blocking(p)) {
				producer_wait(p, NULL, mmapq_frame_size(len));
				break;
			}
			if (!p->cfg.generate_rate && i)
				break; /* as many as fit, and at least one (dropped) */
		}
		r = producer_put(p, NULL, rec, len);
		if (r < 0)
			return r;
		if (r > 0)
			break; /* another producer took the room: it waits for room */
		d->gen_done++;
	}
	return 0;
}

/* ns until the generator owes its next record */
static uint64_t generate_wait(const struct daemon *d)
{
	uint64_t next_ns, now = mmapq_now_ns();

	if (!d->p.cfg.generate_rate)
		return 0;
	next_ns = d->gen_start_ns + (uint64_t)((double)(d->gen_done + 1) * 1e9 / d->p.cfg.generate_rate);
	return next_ns > now ? next_ns - now : 0;
}

/* ---- the loop -------------------------------------------------------------- */

/* One wait for input (stdin or the clients) of at most max_ns, and what it
 * brought read.  0, or -errno of what ends the run. */
static int wait_events(struct daemon *d, const sigset_t *unblocked, uint64_t max_ns)
{
	struct producer *p = &d->p;
	struct pollfd pf[MAX_LISTEN + MAX_CLIENTS];
	bool room = producer_may_read(p);
	struct timespec ts;
	unsigned n;
	int r;

	if (p->input == IN_SOCKET) {
		uint64_t a = clients_poll_wait(p);
		if (a < max_ns)
			max_ns = a;
		n = clients_poll_set(p, pf, room);
	} else if (p->input == IN_STDIN) {
		pf[0] = (struct pollfd){.fd = STDIN_FILENO,
		                        .events = room && !p->src[0]->eof ? POLLIN : 0};
		n = 1;
	} else {
		n = 0; /* the generator: only the time until its next record */
	}
	ts = (struct timespec){.tv_sec = (time_t)(max_ns / 1000000000u),
	                       .tv_nsec = (long)(max_ns % 1000000000u)};
	if (signals_stop() || signals_reload())
		return 0;
	r = ppoll(pf, n, &ts, unblocked);
	if (r < 0)
		return errno == EINTR ? 0 : -errno;
	if (r == 0)
		return 0;
	/* ready at once (a regular file always is): ppoll let no signal in */
	signals_take(unblocked);
	if (signals_stop() || signals_reload())
		return 0;
	if (p->input == IN_SOCKET)
		return clients_poll_done(p, pf);
	if (n && (pf[0].revents & (POLLIN | POLLHUP | POLLERR)))
		return input_read(p, p->src[0]);
	return 0;
}

static void apply_reload(struct daemon *d)
{
	struct producer *p = &d->p;
	enum mmapq_on_full old_on_full = p->cfg.on_full;

	signals_reload_taken();
	if (settings_reload(&d->settings, &p->cfg, NULL) <= 0)
		return;
	mmapq_set_sync(p->q, p->cfg.sync);
	mmapq_set_spin(p->q, p->cfg.spin_us);
	if (p->cfg.generate_rate && old_on_full == p->cfg.on_full) {
		/* a new rate counts from now */
		d->gen_start_ns = mmapq_now_ns();
		d->gen_done = 0;
	}
	d->next_stats_ns = mmapq_now_ns();
}

/* A record waits for room in block mode: wait for room for it, a slice at
 * a time.  Signals are let in while we wait: a stop interrupts it at once
 * (-EINTR), or at worst at the end of its slice; what the clients are owed
 * does not wait. */
static int wait_for_room(struct daemon *d, const sigset_t *unblocked)
{
	struct producer *p = &d->p;
	uint64_t now = mmapq_now_ns(), deadline = now + service_max_wait_ns();
	sigset_t blocked;
	int r;

	if (p->input == IN_SOCKET) {
		r = clients_serve_while_full(p);
		if (r < 0)
			return p->error ? p->error : producer_fatal(p, r);
	}
	if (!d->wait_ns) {
		d->wait_ns = now;
		d->wait_usec = wall_usec();
	}
	/* the slice ends when the wait is to be said, if it is not yet */
	if (!d->wait_said && d->wait_ns + WAIT_SAY_NS < deadline)
		deadline = d->wait_ns + WAIT_SAY_NS;
	sigprocmask(SIG_SETMASK, unblocked, &blocked);
	r = producer_refill(p, deadline);
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	if (r < 0)
		return producer_fatal(p, r);
	if (!producer_may_read(p))
		wait_look(d);
	return 0;
}

/*
 * Group commit (sync = batch): each publish costs two msyncs, of the new
 * frames and of the header, so records that come one read after another
 * are published together: while some are pending, the loop only looks for
 * more input (without waiting) and publishes once a look brings nothing,
 * the pending records fill GROUP_BYTES, or there is no room for more (a
 * full ring publishes in mmapq_reserve).  A client's OK waits for the
 * publish, so never longer than input keeps coming without a pause.
 */
#define GROUP_BYTES (16u << 20)

static bool grouping(const struct producer *p)
{
	uint64_t most = p->cfg.size / 2;

	if (most > GROUP_BYTES)
		most = GROUP_BYTES;
	return p->cfg.sync == MMAPQ_SYNC_BATCH && mmapq_pending(p->q) && p->grouped < most &&
	       producer_may_read(p) && !signals_stop();
}

/* How long the loop may wait for events (*wait_ns): until the watchdog's
 * ping, the next ACK owed to a client, the next generated record, the
 * next sync of sync = interval (made here when due), or not at all while
 * a group is being gathered.  0, or -errno that ends the run. */
static int next_wait(struct daemon *d, uint64_t *wait_ns)
{
	struct producer *p = &d->p;
	uint64_t w = service_max_wait_ns(), x;
	int r;

	if (p->input == IN_SOCKET && (x = clients_ack_wait(p)) < w)
		w = x;
	if (p->input == IN_GENERATE) {
		r = generate(d);
		if (r < 0)
			return p->error ? p->error : r;
		if ((x = generate_wait(d)) < w)
			w = x;
	}
	r = sync_timer_due(&d->sync, p->q, &p->cfg);
	if (r < 0)
		return producer_fatal(p, r);
	if ((x = sync_timer_wait(&d->sync)) < w)
		w = x;
	if (grouping(p))
		w = 0; /* only look: what is there joins the group */
	*wait_ns = w;
	return 0;
}

/* 0 at the end of input or on a stop; -errno of what ended it otherwise. */
static int run(struct daemon *d, const sigset_t *unblocked)
{
	struct producer *p = &d->p;
	int r;

	for (;;) {
		uint64_t wait_ns = 0;
		uint32_t pending;

		mmapq_fault("producer.loop");
		service_loop_tick();
		if (signals_reload())
			apply_reload(d);
		if (signals_stop())
			return 0;
		if (d->wait_ns && producer_may_read(p))
			wait_over(d, "no record waits any more (its client is gone)");
		remove_idle_consumers(d);
		stats(d, 0);
		if (p->error)
			return p->error;
		if (!producer_may_read(p)) {
			if (input_stdin_ended(p) && !sources_deferred(p)) {
				/* full, and nothing more will come: everything
				 * read is published (the queue stays full for
				 * the consumer) */
				sources_finish(p);
				return p->error;
			}
			r = wait_for_room(d, unblocked);
			if (r < 0)
				return r;
			if (!producer_may_read(p))
				continue; /* a slice ended: stdin's end and a stop looked at again */
			wait_over(d, "room again");
			if (p->input == IN_SOCKET)
				clients_room(p);
		}
		/* records that lost their room to another producer, before any
		 * more is read */
		if (sources_deferred(p)) {
			r = sources_put_deferred(p);
			if (r < 0)
				return r;
			if (!producer_may_read(p))
				continue;
		}
		sources_finish(p);
		if (p->error)
			return p->error;
		r = next_wait(d, &wait_ns);
		if (r < 0)
			return r;
		pending = mmapq_pending(p->q);
		if (p->input != IN_GENERATE || wait_ns) {
			r = wait_events(d, unblocked, wait_ns);
			if (r < 0)
				return p->error ? p->error : r;
		}
		sources_finish(p);
		if (p->error)
			return p->error;
		if (grouping(p) && mmapq_pending(p->q) != pending)
			continue; /* input keeps coming: publish it with what follows */
		/* Record deadlines, once what the clients sent is read: with
		 * room left, none of them waits for us. */
		if (p->input == IN_SOCKET && producer_may_read(p))
			clients_expire(p);
		r = mmapq_publish(p->q);
		if (r >= 0)
			r = producer_refill(p, 0); /* publishing saw the consumer's progress */
		if (r == -EINTR && signals_stop())
			return 0; /* the mutex is not to be had: see the shutdown */
		if (r < 0)
			return producer_fatal(p, r);
		producer_published(p);
		if (p->grouped)
			sync_timer_mark(&d->sync, &p->cfg);
		p->grouped = 0;
		if (p->input == IN_SOCKET)
			clients_ack(p, NULL);
		if (p->input == IN_STDIN && p->src[0]->finished)
			return 0; /* end of input, everything published */
	}
}

/* ---- start-up and shutdown -------------------------------------------------- */

/* 0, or -errno (said): -EBADF for a closed stdin, -ENOMEM, or what
 * clients_listen says. */
static int setup_input(struct daemon *d)
{
	struct producer *p = &d->p;
	int n = sd_listen_fds(1);

	if (n > 0 && !strcmp(p->cfg.input, "generate")) {
		/* the configuration asks for a generator: the socket stays with
		 * systemd (connections wait in its backlog) */
		log_notice("input = generate: not serving the %d socket(s) passed by systemd", n);
		n = 0;
	}
	if (n > 0 || !strcmp(p->cfg.input, "socket")) {
		/* socket activation overrides [producer] input */
		p->input = IN_SOCKET;
		return clients_listen(p, n > 0 ? n : 0);
	}
	if (!strcmp(p->cfg.input, "generate")) {
		p->input = IN_GENERATE;
		d->gen_start_ns = mmapq_now_ns();
		return 0;
	}
	if (START_CLOSED(d->closed_std, STDIN_FILENO)) {
		log_error("input = stdin: standard input was closed when the producer started");
		return -EBADF;
	}
	p->input = IN_STDIN;
	p->src[0] = source_new(p, STDIN_FILENO, "stdin");
	if (!p->src[0]) {
		log_error("out of memory");
		return -ENOMEM;
	}
	p->n_src = 1;
	return 0;
}

/* Exit code for setup_input's -errno. */
static int input_exit_code(int r)
{
	switch (-r) {
	case ENAMETOOLONG:
		return EXIT_CONFIG;   /* [producer] socket */
	case ENOTSOCK:
		return EXIT_USAGE;    /* what systemd passed is not our socket */
	case EBADF:
	case ENOMEM:
	case EMFILE:
	case ENFILE:
	case ENOBUFS:
		return EXIT_IOERR;
	default:
		return EXIT_CANTCREATE; /* the socket file: directory, permission, in use */
	}
}

/* Everything read published, or the exit code says why not; the clients
 * told (OK, or FAIL stopping). */
/* The producer's own option: -n, --name NAME. */
static void own_option(void *ctx, struct options *o, int id, char *arg)
{
	struct daemon *d = ctx;

	if (id == OPT_NAME)
		d->settings.producer = options_producer_name(o, "--name", arg);
}

static int shutdown_publish(struct daemon *d, int code)
{
	struct producer *p = &d->p;
	uint64_t held;
	int r;

	if (signals_stop() && p->input == IN_STDIN)
		input_finish_on_stop(p, p->src[0]);
	/* what a put that gave up on the mutex left to its sources, first */
	held = sources_put_held(p);
	r = mmapq_publish(p->q);
	if (r == -EINTR) {
		/* a peer holds the mutex and does not let go (stopped, traced):
		 * what we read stays unpublished, and every client is told so */
		log_error("%s: stopping with %" PRIu64 " records read but not published: the queue's"
		          " mutex is held by a process that does not release it (stopped?)",
		          mmapq_path(p->q), mmapq_pending(p->q) + held);
		for (unsigned i = 0; i < p->n_src; i++)
			p->src[i]->published -= p->src[i]->pending;
		code = EXIT_IOERR;
	} else if (held) {
		/* the mutex came free for the publish only, or there was no room */
		log_error("%s: stopping with %" PRIu64 " records read but not put: the queue's mutex"
		          " was not to be had, or no room", mmapq_path(p->q), held);
		code = EXIT_IOERR;
	} else if (r < 0 && code == EXIT_OK) {
		code = exit_code_for_run(producer_fatal(p, r));
	}
	if (p->input == IN_STDIN && (p->src[0]->rejected || p->src[0]->dropped))
		log_notice("%" PRIu64 " records published, %" PRIu64 " bad input skipped, %" PRIu64
		           " dropped", p->src[0]->published, p->src[0]->rejected, p->src[0]->dropped);
	if (p->input == IN_SOCKET)
		clients_ack(p, signals_stop() || code ? PROTOCOL_FAIL_STOPPING : NULL);
	return code;
}

BUILD_DEFINE;

int main(int argc, char **argv)
{
	struct daemon d = {
		.p = {
			.bad_limit = LOG_LIMIT_INIT("bad input", 10, 20),
			.drop_limit = LOG_LIMIT_INIT("records dropped", 10, 1),
			.accept_limit = LOG_LIMIT_INIT("accept failures", 10, 1),
			.gone_limit = LOG_LIMIT_INIT("client connections failed", 10, 5),
			.clock = mmapq_now_ns,
		},
	};
	struct producer *p = &d.p;
	sigset_t sigs, unblocked;
	int r, code;

	/* 1. standard descriptors, options and configuration */
	if (!start_daemon(&d.opt, &d.settings, PROG_PRODUCER, argc, argv, own_option, &d, &p->cfg,
	                  &d.closed_std, &code))
		goto out_settings;

	/* 2. signals: blocked except while waiting (ppoll, the queue's waits),
	 * so none is lost; not yet while attaching, where a stop must be able
	 * to interrupt the wait for the attach lock */
	signals_install();
	signals_set(&sigs);
	sigprocmask(SIG_SETMASK, NULL, &unblocked);

	/* 3. the queue */
	code = attach_queue(&p->cfg, MMAPQ_ROLE_PRODUCER, &unblocked, &p->q);
	if (code || !p->q)
		goto out_settings;
	sigprocmask(SIG_BLOCK, &sigs, NULL);

	/* 4. the input */
	p->buf = malloc(READ_CHUNK);
	r = p->buf ? setup_input(&d) : -ENOMEM;
	if (r < 0) {
		code = input_exit_code(r);
		service_failed(code, "cannot set up the input");
		goto out;
	}

	/* what the first read may take */
	r = producer_refill(p, 0);
	if (r < 0) {
		code = exit_code_for_run(producer_fatal(p, r));
		goto out;
	}

	/* 5. ready */
	d.next_stats_ns = mmapq_now_ns() + (uint64_t)p->cfg.stats_interval * 1000000000u;
	log_debug("attached to %s as producer %s, input %s", p->cfg.queue_path,
	          p->cfg.producer[0] ? p->cfg.producer : MMAPQ_PRODUCER_DEFAULT,
	          p->input == IN_STDIN ? "stdin" : p->input == IN_GENERATE ? "generate" : "socket");
	service_ready("running");
	code = exit_code_for_run(run(&d, &unblocked));
	wait_over(&d, "stopping");

	/* shutdown, in reverse */
	service_stopping();
	code = shutdown_publish(&d, code);
	stats(&d, 1);
out:
	if (p->input == IN_SOCKET)
		clients_close(p);
	else if (p->n_src)
		source_free(p->src[0]);
	free(p->buf);
	mmapq_close(p->q);
out_settings:
	settings_free(&d.settings);
	return code;
}
