/* SPDX-License-Identifier: MIT */
/*
 * nats.h -- [consumer] output = nats: every record becomes one message of
 * a NATS JetStream stream, and leaves the queue only once the broker has
 * acknowledged it.
 *
 * The consumer's part (consumer.c) is small: while this output holds
 * records (published, not yet released) it waits here instead of on the
 * queue (nats_out_wait), and each pass of its loop hands the available
 * records to nats_out_forward, which publishes the new ones and says how
 * many of the oldest the broker has acknowledged, in order: exactly those
 * are released (mmapq_release), then nats_out_released.
 *
 * What is sent, per record: the payload as the consumer prints it (an int
 * in decimal, a line as it is; no line end), and the headers
 *   Nats-Msg-Id: <queue id, 32 hex digits>:<seq>
 *   Mmapq-Seq: <seq>
 *   Nats-Expected-Last-Msg-Id: <queue id>:<seq - 1>   ([nats] ordered = yes)
 * The queue id (mmapq_status.id) is random per queue file, so the ids of
 * two queues, on one host or many, never collide.
 *
 * Exactly once in the stream.  Records are published asynchronously, at
 * most [nats] max_pending of them not yet released; each ack (a libnats
 * thread) marks its record, and the consumer releases the longest run of
 * acknowledged records from the oldest.  A consumer killed at any instant
 * has released only acknowledged records, so its successor publishes
 * again only records the stream may or may not have (from the stored
 * head), under the same Nats-Msg-Id: JetStream's duplicate window drops
 * those it has, and acknowledges them as duplicates.  This holds while the
 * successor comes within the stream's duplicate window of the first
 * publication (2 minutes by default); later, a record the stream stored
 * but had not acknowledged can be stored twice.
 *
 * Order in the stream.  A failure in the middle of the window (a leader
 * election, a lost connection, a timeout) may lose record N while N+1 is
 * stored; publishing N again would put it after N+1.  With [nats] ordered
 * = yes every record but the first of a run carries
 * Nats-Expected-Last-Msg-Id of its predecessor: the server stores it only
 * right after that one, so nothing after a lost record is ever stored;
 * after any failure the output takes back every unacknowledged record
 * (js_PublishAsyncGetPendingList) and publishes them again from the oldest,
 * which starts a new run.  The stream must then hold this queue's records
 * only.  With ordered = no, records of several queues may share a stream,
 * and a failure in the middle of the window may store some out of order
 * (never lost, never twice).
 *
 * Broker trouble is not an error: a lost connection, a server or stream
 * leader that does not answer, slow or missing acks keep the records in
 * the queue (the producer fills it meanwhile), libnats reconnects with
 * pauses from 0.1 s doubling to [nats] reconnect_max_wait, failed records
 * are published again after a pause that doubles the same way; STATUS=
 * says what is going on, the log says it once (collapsed).  What retrying
 * cannot fix ends the consumer with -EREMOTEIO (exit 76, not restarted by
 * systemd), after a message that names the setting: no such stream (and
 * create_stream = no), a stream that does not capture the subject, the
 * credentials refused, permission denied for the subject, a record larger
 * than the stream or the server accepts, JetStream not enabled.  Before it
 * exits, the consumer waits (about a second, nats_out_drain) for the acks
 * of what is still in flight and releases what the stream acknowledged
 * before the refused record, in order: a successor started later than
 * the duplicate window does not publish those again.
 */
#ifndef MMAPQ_NATS_H
#define MMAPQ_NATS_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "mmapq.h"

struct nats_out;

#ifdef MMAPQ_NATS

/*
 * Starts connecting to [nats] servers (in the background if none answers
 * yet: records wait in the queue until one does) with the queue's id.  0,
 * or -errno, said: -EINVAL (a setting libnats refuses: a TLS or
 * credentials file that is not one), what open() said for such a file
 * that cannot be read, -ENOMEM.
 */
int nats_out_open(struct nats_out **o, const struct mmapq_config *cfg,
                  const uint8_t id[MMAPQ_ID_SIZE]);
/* Closes the connection; what it holds is released by no one (it stays in
 * the queue).  NULL is fine. */
void nats_out_close(struct nats_out *o);

/* True while the consumer should wait here (nats_out_wait) rather than on
 * the queue: records are held, or the broker cannot take any now. */
bool nats_out_busy(struct nats_out *o);
/* Until acks, a failure, a change of the connection or a retry is due,
 * or deadline_ns (CLOCK_MONOTONIC). */
void nats_out_wait(struct nats_out *o, uint64_t deadline_ns);

/*
 * navail records are available (index 0 the oldest, the first held):
 * publishes those not yet published, as far as max_pending and the broker
 * allow, and takes in what happened since.  *acked: how many of the
 * oldest are acknowledged, in order (the caller releases them, then calls
 * nats_out_released).  0, or -EREMOTEIO (said: exit 76) or another
 * -errno (the queue: said).
 */
int nats_out_forward(struct nats_out *o, struct mmapq *q, uint32_t navail, uint32_t *acked);
void nats_out_released(struct nats_out *o, uint32_t n);
/* Waits for the acks of what is in flight, until deadline_ns; returns how
 * many of the oldest are then acknowledged (for a stop, or after
 * -EREMOTEIO: release them). */
uint32_t nats_out_drain(struct nats_out *o, uint64_t deadline_ns);

/* For STATUS=: the server, the stream and how it goes ("acked 10, in
 * flight 5" or what the trouble is).  Valid until the next call. */
const char *nats_out_describe(struct nats_out *o);

#else /* built without libnats (libnats-dev): output = nats is refused */

#include <errno.h>

#include "log.h"

static inline int nats_out_open(struct nats_out **o, const struct mmapq_config *cfg,
                                const uint8_t id[MMAPQ_ID_SIZE])
{
	(void)o, (void)cfg, (void)id;
	log_error("output = nats: this mmapq-consumer was built without libnats (install"
	          " libnats-dev and build again)");
	return -EINVAL;
}
static inline void nats_out_close(struct nats_out *o)
{
	(void)o;
}
static inline bool nats_out_busy(struct nats_out *o)
{
	(void)o;
	return false;
}
static inline void nats_out_wait(struct nats_out *o, uint64_t deadline_ns)
{
	(void)o, (void)deadline_ns;
}
static inline int nats_out_forward(struct nats_out *o, struct mmapq *q, uint32_t navail,
                                   uint32_t *acked)
{
	(void)o, (void)q, (void)navail;
	*acked = 0;
	return -EINVAL;
}
static inline void nats_out_released(struct nats_out *o, uint32_t n)
{
	(void)o, (void)n;
}
static inline uint32_t nats_out_drain(struct nats_out *o, uint64_t deadline_ns)
{
	(void)o, (void)deadline_ns;
	return 0;
}
static inline const char *nats_out_describe(struct nats_out *o)
{
	(void)o;
	return "nats";
}

#endif /* MMAPQ_NATS */
#endif
