/* SPDX-License-Identifier: MIT */
/*
 * output.h -- where a consumer's records go: one interface, one file per
 * kind, one line per kind in common/config/outputs.def.
 *
 *   output_stream.c   stdout, file:PATH, null: records as mmapq-producer
 *                     reads them (lines; binary: length and bytes), in batches
 *   output_journal.c  journal: one journald entry per record
 *   output_nats.c     nats: one JetStream message per record, released once
 *                     the broker acknowledged it
 *
 * The loop (main.c) hands an output the available records in order, each
 * time those that follow what it already holds (output_held), and releases
 * from the queue exactly what the output reports delivered (done): a
 * record leaves the queue only once it is safely out (written, and with
 * sync != never on a file fdatasync'ed; in the journal; acknowledged by
 * the broker).  A crash in between repeats what was held, never skips it.
 *
 * An output never touches the queue, the watchdog or the signals: it gets
 * records, a stop predicate, a progress callback for long deliveries, and
 * the configuration.  It says its own errors (log.h) and returns -errno.
 *
 * Records are bytes of any length up to max_record (format binary: any
 * bytes; line: no '\n'; int: 8).  The array deliver gets is valid during
 * the call; each record's data (mmapq_get: in the queue's mapping, never
 * written meanwhile) until the loop releases that record, so an output may
 * keep pointers to the data of the records it holds and write them from
 * there (no copy, no buffer of max_record): a record stays held until the
 * output reports it done, and the loop releases only then, or closes the
 * output first (a switch), which drops what it held.
 */
#ifndef MMAPQ_OUTPUT_H
#define MMAPQ_OUTPUT_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "mmapq.h"

/* What an output may use of the daemon. */
struct output_env {
	const struct mmapq_config *cfg; /* the running configuration (a reload changes it) */
	unsigned closed_std;            /* the standard descriptors closed at start (start.h) */
	uint8_t queue_id[MMAPQ_ID_SIZE];
	bool (*stop)(void);             /* a stop was asked for: a long write gives up */
	bool (*interrupt)(void);        /* a stop or a reload was asked for: a wait ends */
	void (*progress)(void);         /* a long delivery moves on (the watchdog) */
};

struct output;

struct output_ops {
	/* Takes recs[0..n) (they follow what the output holds), as many as it
	 * can now (*taken, always set).  0, or -errno (said); the records
	 * taken before an error count as held. */
	int (*deliver)(struct output *o, const struct mmapq_record *recs, uint32_t n,
	               uint32_t *taken);
	/* Completes what it holds as far as it can: *done (always set), how
	 * many of the oldest held records are now delivered for good; the
	 * loop releases exactly those, then calls released.  A synchronous
	 * output writes everything it took; -EINTR if stop() ended a write. */
	int (*complete)(struct output *o, uint32_t *done);
	/* Records taken and not yet reported done, and the loop's word that
	 * n of them left the queue; NULL for an output whose held records are
	 * struct output's held (the loop then takes n from it). */
	uint32_t (*held)(const struct output *o);
	void (*released)(struct output *o, uint32_t n);
	/* Asynchronous outputs (NULL for the others): true while the loop
	 * should wait here (wait) rather than on the queue; drain waits, until
	 * deadline_ns, for what is in flight (before a stop or a switch). */
	bool (*busy)(struct output *o);
	void (*wait)(struct output *o, uint64_t deadline_ns);
	void (*drain)(struct output *o, uint64_t deadline_ns);
	/* Outputs with a server (NULL for the others): how it goes, for
	 * mmapq_output_report (acknowledged and reconnects: those since the
	 * previous call, as that function adds them up). */
	void (*health)(struct output *o, struct mmapq_output_health *h);
	/* For STATUS=: what it is and how it goes.  Valid until the next call. */
	const char *(*describe)(struct output *o);
	void (*close)(struct output *o); /* what it holds stays in the queue */
};

/* Every output starts with this. */
struct output {
	const struct output_ops *ops;
	const struct output_env *env;
	uint32_t held;  /* ops->held NULL: taken (the output adds), not yet released (the loop takes) */
};

/* The output [consumer] output names (spec: "auto", "journal", "stdout",
 * "null", "file:PATH", "nats").  0, or -errno (said): -EINVAL for an output
 * this build does not have, -EIO for journald unreachable or a damaged
 * output file, -EBADF for a closed stdout, -EREMOTEIO for a NATS refusal,
 * what open() said for a file. */
int output_open(const struct output_env *env, const char *spec, struct output **ret);
/* NULL is fine. */
void output_close(struct output *o);

static inline uint32_t output_held(const struct output *o)
{
	return o->ops->held ? o->ops->held(o) : o->held;
}

static inline void output_released(struct output *o, uint32_t n)
{
	if (o->ops->released)
		o->ops->released(o, n);
	else
		o->held -= n;
}
static inline bool output_busy(struct output *o)
{
	return o->ops->busy && o->ops->busy(o);
}

/* ---- the kinds (common/config/outputs.def): output_IMPL_open ---- */
#define OUTPUT(name, arg, impl) \
	int output_##impl##_open(const struct output_env *env, const char *spec, struct output **ret);
#include "outputs.def"
#undef OUTPUT

#endif
