/* SPDX-License-Identifier: MIT */
/*
 * mmapq-consumer -- waits for records and hands them to its output.
 *
 * Start-up, in this order: standard descriptors, options, config, signals,
 * queue (create or attach, validate, take the consumer role), output (only
 * once the role is ours: a refused consumer must not touch the live one's
 * output).  Shutdown in reverse.
 *
 * The loop: records available -> read (mmapq_get_many, each checked) ->
 * handed to the output (output.h) -> released, exactly those the output
 * says are delivered, which advances this consumer's cursor in the file.
 * A crash between delivering and releasing repeats what was held after
 * restart (at-least-once; with output = journal each entry carries
 * MMAPQ_SEQ=, with seq_prefix = yes each line its sequence number, which
 * identify the repeats); nothing is skipped, unless on_full = skip and the
 * producer needed the room while this consumer was down (said at start).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attach.h"
#include "exit.h"
#include "fault.h"
#include "log.h"
#include "output.h"
#include "service.h"
#include "signals.h"
#include "start.h"

#define GET_MANY 256u /* records per mmapq_get_many */

/* mmapq-consumer's own options. */
struct consumer_options {
	uint64_t count;           /* --count N; 0 = forever */
	char named_instance[MMAPQ_INSTANCE_NAME_MAX + MMAPQ_CONSUMER_NAME_MAX + 2];
};

struct consumer {
	struct mmapq *q;
	struct mmapq_config cfg;
	struct options opt;
	struct consumer_options own;
	struct settings settings;
	unsigned closed_std;      /* standard descriptors closed at start */
	struct output_env env;
	struct output *out;
	uint64_t consumed, next_stats_ns, stats_consumed, next_status_ns;
	struct sync_timer sync;          /* sync = interval: the cursor to disk */
	bool stale;               /* the path no longer names our file: drain, then stop */
	bool corrupt;             /* the header was overwritten: stop */
	struct rate_meter status_rate;
	bool health_reported;     /* the output's health is in our entry */
};

/* ---- options ---------------------------------------------------------------- */

static void own_option(void *ctx, struct options *o, int id, char *arg)
{
	struct consumer *c = ctx;

	switch (id) {
	case OPT_NAME:
		c->settings.consumer = options_consumer_name(o, "--name", arg);
		break;
	case OPT_NAMED: {
		char *colon;

		/* QUEUE:NAME or NAME; a queue's name may hold ':', a consumer's
		 * may not: split at the last one */
		snprintf(c->own.named_instance, sizeof(c->own.named_instance), "%s", arg);
		colon = strrchr(c->own.named_instance, ':');
		if (colon) {
			*colon = '\0';
			if (!mmapq_config_instance_valid(c->own.named_instance))
				options_usage_error(o, "--named-instance: '%s' is not an instance name (1 to"
				                    " %d letters, digits and ':_.@-')", c->own.named_instance,
				                    MMAPQ_INSTANCE_NAME_MAX);
			o->instance = c->own.named_instance;
		}
		c->settings.consumer = options_consumer_name(o, "--named-instance",
		                                             colon ? colon + 1 : c->own.named_instance);
		break;
	}
	case OPT_COUNT:
		c->own.count = options_number(o, "--count", arg, 1, "a positive integer");
		break;
	case OPT_OUTPUT: {
		struct mmapq_config probe;
		const char *why;

		mmapq_config_defaults(&probe);
		why = mmapq_config_set(&probe, "consumer", "output", arg);
		if (why)
			options_usage_error(o, "--output: '%s' %s (allowed: %s)", arg, why,
			                    mmapq_config_outputs());
		c->settings.output = arg;
		break;
	}
	}
}

/* ---- the records, to the output and released -------------------------------- */

/* Release what the output delivered; say why we stop with the rest kept. */
static int release(struct consumer *c, uint32_t n)
{
	int r;

	if (!n)
		return 0;
	mmapq_fault("consumer.written"); /* delivered, not yet released */
	r = mmapq_release(c->q, n);
	if (r == -EINTR) {
		log_notice("stopping: %u records delivered but not acknowledged (the queue's mutex is"
		           " held by a process that does not release it); they will be delivered again",
		           n);
		return -EINTR;
	}
	if (r < 0) {
		log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
		return r;
	}
	sync_timer_mark(&c->sync, &c->cfg);
	output_released(c->out, n);
	c->consumed += n;
	return 0;
}

/* What the output completed, released.  r: what ended the batch, if it
 * did; the output's error wins over a clean end, a release error over
 * both. */
static int complete(struct consumer *c, int r)
{
	uint32_t done;
	int rc = c->out->ops->complete(c->out, &done), rr = release(c, done);

	return rr < 0 ? rr : r < 0 ? r : rc;
}

/* Before a stop, a refusal or a switch: what an asynchronous output has in
 * flight, within about a second, completed and released; the rest stays in
 * the queue (delivered again by the next consumer, or output). */
static void drain(struct consumer *c)
{
	uint32_t before = output_held(c->out);

	if (!c->out->ops->drain || !before)
		return;
	c->out->ops->drain(c->out, mmapq_now_ns() + 1000000000u);
	(void)complete(c, 0);
	log_notice("%s: %u of %u records in flight acknowledged and released before leaving",
	           c->out->ops->describe(c->out), before - output_held(c->out), before);
}

/* Our cursor and the ring bytes of what we have not consumed, from the
 * consumer table (not found: the queue's head, and -1). */
static uint64_t own_position(const struct consumer *c, uint64_t fallback, int64_t *lag_bytes)
{
	struct mmapq_consumer_status cs[MMAPQ_CONSUMERS_MAX];
	int n = mmapq_consumers(c->q, cs, MMAPQ_CONSUMERS_MAX);

	for (int i = 0; i < n && i < (int)MMAPQ_CONSUMERS_MAX; i++)
		if (!strcmp(cs[i].name, c->cfg.consumer)) {
			if (lag_bytes)
				*lag_bytes = (int64_t)cs[i].lag_bytes;
			return cs[i].position;
		}
	if (lag_bytes)
		*lag_bytes = -1;
	return fallback;
}

/* Record idx of the available ones is damaged (its checksum does not
 * hold): it is never delivered; say which, and the way out. */
static void damaged(const struct consumer *c, uint32_t idx)
{
	/* idx counts from our cursor: nothing is released while a batch is read */
	uint64_t seq = own_position(c, 0, NULL) + idx;

	log_error("%s: record %" PRIu64 " is damaged (its checksum does not match its bytes): not"
	          " delivered; consumer '%s' stops before it (the records before it are delivered);"
	          " to salvage the queue, stop its daemons and run `mmapqctl repair` (mmapqctl(1)):"
	          " it keeps the intact records and says which it drops",
	          mmapq_path(c->q), seq, c->cfg.consumer);
}

/*
 * Up to avail available records: what the output already completed
 * released, those after what it holds read and handed to it as far as it
 * takes them, then what it completed released.  0 to go on; -EINTR if
 * asked to stop; -EBADMSG for a corrupt record (the ones before it are
 * delivered); another -errno (said).
 */
static int consume(struct consumer *c, uint32_t avail)
{
	uint64_t before = c->consumed;
	uint32_t idx;
	int r = complete(c, 0);

	if (r < 0)
		return r;
	avail -= (uint32_t)(c->consumed - before); /* released: no longer available */
	idx = output_held(c->out);
	while (idx < avail) {
		struct mmapq_record recs[GET_MANY];
		uint32_t k = avail - idx < GET_MANY ? avail - idx : GET_MANY, taken = 0;

		r = mmapq_get_many(c->q, idx, k, recs);
		if (r == -EBADMSG) {
			damaged(c, idx);
			break; /* those before it are delivered */
		}
		if (r < 0) {
			log_error("%s: record %" PRIu32 " of the batch: %s", mmapq_path(c->q), idx,
			          mmapq_strerror(r));
			break;
		}
		k = (uint32_t)r;
		r = c->out->ops->deliver(c->out, recs, k, &taken);
		idx += taken;
		if (r < 0 || taken < k)
			break; /* an error, or the output takes no more now */
	}
	return complete(c, r < 0 ? r : 0);
}

/* ---- the loop ------------------------------------------------------------------ */

static void stats(struct consumer *c, int force)
{
	struct mmapq_status st;
	uint64_t now = mmapq_now_ns(), pos;
	int64_t lag_bytes;
	bool log_due = c->cfg.stats_interval && (force || now >= c->next_stats_ns);
	char rate[32], depth[96];
	int r;

	if (!force && !log_due && now < c->next_status_ns)
		return;
	r = c->stale || c->corrupt ? 0 : mmapq_check(c->q);
	if (r == -ESTALE) {
		log_error("%s: %s; writing out what it still holds, then stopping", mmapq_path(c->q),
		          mmapq_strerror(r));
		c->stale = true;
	} else if (r == -EBADMSG) {
		log_error("%s: the header was overwritten while in use; stopping", mmapq_path(c->q));
		c->corrupt = true;
		return;
	}
	if (mmapq_status(c->q, &st) < 0)
		return;
	/* the output's health, for observers (mmapqctl metrics); an output
	 * without a server (after a reload switched to one) says nothing */
	if (c->out->ops->health) {
		struct mmapq_output_health h;

		c->out->ops->health(c->out, &h);
		c->health_reported = mmapq_output_report(c->q, &h) == 0;
	} else if (c->health_reported) {
		c->health_reported = mmapq_output_report(c->q, NULL) != 0;
	}
	/* our own cursor: head is the slowest consumer's */
	pos = own_position(c, st.head, &lag_bytes);
	snprintf(depth, sizeof(depth), "depth %" PRIu64 " records (%" PRIu64 " of %" PRIu64 " bytes)",
	         st.tail - pos, lag_bytes < 0 ? st.used_bytes : (uint64_t)lag_bytes, st.size);
	service_status("consumed %" PRIu64 ", %s, %s, output %s", pos, depth,
	               rate_meter_update(&c->status_rate, pos, rate, sizeof(rate)),
	               c->out->ops->describe(c->out));
	c->next_status_ns = now + 1000000000u;
	if (!log_due)
		return;
	log_info("consumed %" PRIu64 ", %s, %.1f rec/s", pos, depth,
	         (double)(c->consumed - c->stats_consumed) / c->cfg.stats_interval);
	c->stats_consumed = c->consumed;
	c->next_stats_ns = now + (uint64_t)c->cfg.stats_interval * 1000000000u;
}

/* The keys that choose the output: applied by apply_reload, if the new
 * output opens, and logged by it. */
static const struct settings_key output_keys[] = {
	{"consumer", "output"},
	{"consumer", "journal_namespace"},
	{"consumer", "seq_prefix"},
	{NULL, NULL},
};

/* Why seq_prefix = yes cannot apply to this queue's records, or NULL. */
static const char *seq_prefix_refused(const struct mmapq_config *cfg)
{
	if (cfg->seq_prefix && cfg->format == MMAPQ_FORMAT_BINARY)
		return "format = binary records are framed by their length, with no place for a"
		       " sequence number (the journal and NATS outputs carry it in a field of their"
		       " own)";
	return NULL;
}

/* seq_prefix after a reload: applied, unless refused (then the running
 * value stays). */
static void reload_seq_prefix(struct consumer *c, uint32_t old)
{
	const char *why = seq_prefix_refused(&c->cfg);

	if (old == c->cfg.seq_prefix)
		return;
	settings_log_change("consumer", "seq_prefix", old ? "yes" : "no",
	                    c->cfg.seq_prefix ? "yes" : "no", why);
	if (why)
		c->cfg.seq_prefix = old;
}

/* Says what became of the output keys that changed (why_not: NULL if
 * applied). */
static void log_output_keys(const char *old_output, const char *old_ns, const char *new_output,
                            const char *new_ns, const char *why_not)
{
	if (strcmp(old_output, new_output))
		settings_log_change("consumer", "output", old_output, new_output, why_not);
	if (strcmp(old_ns, new_ns))
		settings_log_change("consumer", "journal_namespace", old_ns, new_ns, why_not);
}

/* [consumer] on_full and inactive_timeout into our entry of the consumer
 * table, where the producer reads them while we are down too. */
static void store_policy(struct consumer *c)
{
	struct mmapq_policy p = {.on_full = c->cfg.consumer_on_full,
	                         .inactive_timeout_s = c->cfg.inactive_timeout};
	int r = mmapq_set_policy(c->q, &p);

	if (r < 0)
		log_warning("cannot store on_full and inactive_timeout in the queue file (the producer"
		            " may not keep to them): %s", mmapq_strerror(r));
}

/* At start: what the skips of on_full = skip cost us while we were down. */
static void say_skipped(struct consumer *c)
{
	struct mmapq_policy p;

	if (mmapq_policy(c->q, -1, &p) < 0 || (!p.skipped && !c->cfg.consumer_on_full))
		return;
	if (p.skipped_since_attach)
		log_warning("lost %" PRIu64 " records to on_full = skip since it last ran (the producer"
		            " needed their room while it was down; %" PRIu64 " since it was registered)",
		            p.skipped_since_attach, p.skipped);
	else
		log_info("lost no records to on_full = skip since it last ran (%" PRIu64 " since it was"
		         " registered)", p.skipped);
}

static void apply_reload(struct consumer *c)
{
	char old_output[sizeof(c->cfg.output)], old_ns[sizeof(c->cfg.journal_namespace)];
	char new_output[sizeof(old_output)], new_ns[sizeof(old_ns)], why[sizeof(old_output) + 64];
	bool journal = !strncmp(c->out->ops->describe(c->out), "journal", 7);
	uint32_t old_seq_prefix = c->cfg.seq_prefix;
	struct output *next;

	memcpy(old_output, c->cfg.output, sizeof(old_output));
	memcpy(old_ns, c->cfg.journal_namespace, sizeof(old_ns));
	signals_reload_taken();
	if (settings_reload(&c->settings, &c->cfg, output_keys) <= 0)
		return;
	reload_seq_prefix(c, old_seq_prefix);
	store_policy(c);
	mmapq_set_sync(c->q, c->cfg.sync);
	mmapq_set_spin(c->q, c->cfg.spin_us);
	c->next_stats_ns = mmapq_now_ns();
	if (!strcmp(old_output, c->cfg.output) &&
	    (!journal || !strcmp(old_ns, c->cfg.journal_namespace))) {
		/* the output stays; a namespace is kept for a later journal */
		log_output_keys(old_output, old_ns, c->cfg.output, c->cfg.journal_namespace, NULL);
		return;
	}
	/* between batches: nothing is held (but what an asynchronous output has) */
	if (output_open(&c->env, c->cfg.output, &next) != 0) {
		/* output_open said why; the running values come back */
		memcpy(new_output, c->cfg.output, sizeof(new_output));
		memcpy(new_ns, c->cfg.journal_namespace, sizeof(new_ns));
		memcpy(c->cfg.output, old_output, sizeof(old_output));
		memcpy(c->cfg.journal_namespace, old_ns, sizeof(old_ns));
		snprintf(why, sizeof(why), "the new output cannot be opened; keeping output %s",
		         c->out->ops->describe(c->out));
		log_output_keys(old_output, old_ns, new_output, new_ns, why);
		return;
	}
	log_output_keys(old_output, old_ns, c->cfg.output, c->cfg.journal_namespace, NULL);
	drain(c);
	output_close(c->out);
	c->out = next;
}

/* How many records are available now, waiting for some until deadline
 * (on the output while it is busy: an asynchronous output's acks).  0, or
 * -errno; -ESTALE once a replaced file is drained. */
static int available(struct consumer *c, uint64_t deadline, uint32_t *n)
{
	int r;

	if (output_busy(c->out)) {
		/* records in flight, or a broker that cannot take any now: wait
		 * for it, then take what the queue has without waiting */
		c->out->ops->wait(c->out, deadline);
		r = mmapq_available(c->q, 0, n);
		if (r == -EAGAIN) {
			*n = 0;
			r = 0;
		}
		return r;
	}
	r = mmapq_available(c->q, c->stale ? 0 : deadline, n);
	if (r == -EAGAIN && c->stale) {
		/* The file is gone from its path, but a producer still attached
		 * to it may publish until it notices: stop only once it is gone
		 * and the last look finds nothing. */
		struct mmapq_status st;
		bool producer = mmapq_status(c->q, &st) == 0 && st.producer.attached;
		r = mmapq_available(c->q, producer ? deadline : 0, n);
		if (r == -EAGAIN && !producer)
			return -ESTALE;
	}
	return r;
}

/* 0 after --count records or on a stop; -errno of what ended it otherwise. */
static int run(struct consumer *c)
{
	for (;;) {
		uint32_t n;
		uint64_t deadline, now;
		int r;

		mmapq_fault("consumer.loop");
		service_loop_tick();
		if (signals_reload())
			apply_reload(c);
		if (signals_stop()) {
			drain(c);
			return 0;
		}
		stats(c, 0);
		if (c->corrupt)
			return -EBADMSG;
		r = sync_timer_due(&c->sync, c->q, &c->cfg);
		if (r < 0) {
			log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
			return r;
		}
		now = mmapq_now_ns();
		deadline = now + service_max_wait_ns();
		if (c->cfg.stats_interval && c->next_stats_ns < deadline)
			deadline = c->next_stats_ns;
		if (sync_timer_wait(&c->sync) != UINT64_MAX && now + sync_timer_wait(&c->sync) < deadline)
			deadline = now + sync_timer_wait(&c->sync);
		r = available(c, deadline, &n);
		if (r == -ETIMEDOUT || r == -EINTR)
			continue;
		if (r < 0) {
			if (r != -ESTALE)
				log_error("%s: %s", mmapq_path(c->q), mmapq_strerror(r));
			return r;
		}
		if (c->own.count && n > c->own.count - c->consumed)
			n = (uint32_t)(c->own.count - c->consumed);
		r = consume(c, n);
		if (r == -EREMOTEIO || r == -EBADMSG)
			drain(c); /* stopping for good: what the broker has is not delivered again */
		if (r < 0)
			return r == -EINTR ? 0 : r;
		if (c->own.count && c->consumed >= c->own.count)
			return 0;
	}
}

/* ---- start-up and shutdown ------------------------------------------------------- */

/* Exit code for output_open's -errno. */
static int output_exit_code(int r)
{
	switch (-r) {
	case EINVAL:
		return EXIT_CONFIG;     /* an output this build does not have */
	case EIO:
	case EBADF:
	case ENOMEM:
		return EXIT_IOERR;      /* journald, a closed stdout, the file's tail */
	case EREMOTEIO:
		return EXIT_PROTOCOL;   /* the NATS server refuses for good */
	default:
		return EXIT_CANTCREATE; /* the file: directory, permission, symlink, ... */
	}
}

BUILD_DEFINE;

int main(int argc, char **argv)
{
	static struct consumer c = {.settings = {.consumer = MMAPQ_CONSUMER_DEFAULT}};
	struct mmapq_status st;
	int r, code;

	/* 1. standard descriptors, options and configuration */
	if (!start_daemon(&c.opt, &c.settings, PROG_CONSUMER, argc, argv, own_option, &c, &c.cfg,
	                  &c.closed_std, &code))
		goto out_settings;

	if (seq_prefix_refused(&c.cfg)) {
		log_error("[consumer] seq_prefix = yes: %s; set it to no", seq_prefix_refused(&c.cfg));
		code = EXIT_CONFIG;
		goto out_settings;
	}

	/* 2. signals (not blocked: SIGTERM interrupts a wait at once) */
	signals_install();

	/* 3. the queue (the role), then the output */
	code = attach_queue(&c.cfg, MMAPQ_ROLE_CONSUMER, NULL, &c.q);
	if (code || !c.q)
		goto out_settings;
	store_policy(&c);
	say_skipped(&c);
	c.env = (struct output_env){
		.cfg = &c.cfg,
		.closed_std = c.closed_std,
		.stop = signals_stop,
		.interrupt = signals_interrupt,
		.progress = service_loop_tick,
	};
	r = mmapq_status(c.q, &st);
	if (r == 0) {
		memcpy(c.env.queue_id, st.id, sizeof(c.env.queue_id));
		r = output_open(&c.env, c.cfg.output, &c.out);
	}
	if (r < 0) {
		code = output_exit_code(r);
		service_failed(code, "cannot open the output");
		goto out;
	}

	/* 4. ready */
	log_debug("attached to %s as consumer '%s', output %s", c.cfg.queue_path, c.cfg.consumer,
	          c.out->ops->describe(c.out));
	c.next_stats_ns = mmapq_now_ns() + (uint64_t)c.cfg.stats_interval * 1000000000u;
	service_ready("running");
	code = exit_code_for_run(run(&c));

	/* shutdown, in reverse */
	service_stopping();
	stats(&c, 1);
out:
	output_close(c.out);
	mmapq_close(c.q);
out_settings:
	settings_free(&c.settings);
	return code;
}
