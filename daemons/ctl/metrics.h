/* SPDX-License-Identifier: MIT */
/*
 * metrics.h -- a queue's state as Prometheus metrics (text exposition
 * format 0.0.4), for `mmapqctl metrics` and the socket-activated endpoint
 * mmapq-metrics.socket (`mmapqctl metrics --http`).
 */
#ifndef MMAPQ_METRICS_H
#define MMAPQ_METRICS_H

#include <stdio.h>

#include "mmapq.h"

/* The metrics of st (the queue at path) and of its n registered
 * consumers cs (mmapq_consumers) on f. */
void metrics_write(FILE *f, const char *path, const struct mmapq_status *st,
                   const struct mmapq_consumer_status *cs, int n);

/*
 * One HTTP/1.x exchange on in/out (an accepted connection: systemd's
 * Accept=yes hands it over as stdin and stdout): read the request (at most
 * 8 KiB of head; the whole exchange, reading and writing, within timeout_ms:
 * a request that has not come by then is answered 408 if the client takes
 * it at once), answer GET /metrics with 200 and the
 * body made by body(), anything else with 404/405/400, then close.  Returns
 * 0 if a response was sent, -errno if the request could not be read or the
 * answer not written.  body() returns 0, or an HTTP status (503) for a
 * queue that cannot be read, with a one-line reason in *why.
 */
int metrics_http(int in, int out, int timeout_ms,
                 int (*body)(void *ctx, FILE *f, const char **why), void *ctx);

#endif
