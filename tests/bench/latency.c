/* SPDX-License-Identifier: MIT */
/*
 * latency.c -- ping-pong of 64-byte records over two channels, one each
 * way; one-way latency = round trip / 2; p50 and p99 of each run's round
 * trips, then the median of --runs runs and their range.
 * Blocking (futex, pipe, socket, mq) and spinning (mmapq with spin_us, the
 * lock-free ring).  Every record is checked on both sides.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "bench.h"

const struct lat_def ldefs[NLAT] = {
	[L_MMAPQ] = {"mmapq", "mmapq, blocking", T_MMAPQ},
	[L_MMAPQ_SPIN] = {"mmapq_spin", "mmapq, spin_us", T_MMAPQ},
	[L_PIPE] = {"pipe", "pipe, blocking", T_PIPE},
	[L_UNIX] = {"unix", "AF_UNIX stream, blocking", T_UNIX},
	[L_MQ] = {"mq", "POSIX mq, blocking", T_MQ},
	[L_SPSC] = {"spsc", "lock-free SPSC ring, spinning", T_SPSC},
};

struct lat_result lat[NLAT];

static int ep_open(struct ep *e, struct cell *c, int side)
{
	memset(e, 0, sizeof(*e));
	e->c = c;
	e->side = side;
	e->deadline = now_ns() + FAR_NS;
	return c->tr->ep_open(e, c, side);
}

static int ep_done(struct ep *e)
{
	return e->c->tr->done ? e->c->tr->done(e) : 0;
}

static void ep_close(struct ep *e)
{
	if (e->c->tr->ep_close)
		e->c->tr->ep_close(e);
}

static int ping(struct cell *c)
{
	const struct transport *tr = c->tr;
	struct ep e;
	unsigned char sbuf[LAT_SIZE] __attribute__((aligned(64)));
	unsigned char rbuf[LAT_SIZE] __attribute__((aligned(64)));
	uint64_t *rtt = xalloc(sizeof(uint64_t) * c->iters);
	uint64_t total = c->warm + c->iters;

	if (ep_open(&e, c, 0))
		return EXIT_FAIL;
	barrier();
	for (uint64_t i = 0; i < total; i++) {
		uint64_t t0, t1;
		rec_fill(sbuf, LAT_SIZE, i);
		t0 = now_ns();
		if (tr->send(&e, sbuf, i) || tr->recv(&e, rbuf))
			return EXIT_FAIL;
		t1 = now_ns();
		if (ep_done(&e))
			return EXIT_FAIL;
		if (!rec_ok(rbuf, LAT_SIZE, i))
			return child_fail("ping %" PRIu64 ": answer is record %" PRIu64, i, rec_index(rbuf));
		if (i >= c->warm)
			rtt[i - c->warm] = t1 - t0;
	}
	qsort(rtt, c->iters, sizeof(uint64_t), cmp_u64);
	ctl->p50_ns = rtt[c->iters / 2] / 2;
	ctl->p99_ns = rtt[c->iters * 99 / 100] / 2;
	ctl->p999_ns = rtt[c->iters * 999 / 1000] / 2;
	ctl->max_ns = rtt[c->iters - 1] / 2;
	ctl->verified = total;
	ep_close(&e);
	free(rtt);
	return 0;
}

static int pong(struct cell *c)
{
	const struct transport *tr = c->tr;
	struct ep e;
	unsigned char buf[LAT_SIZE] __attribute__((aligned(64)));
	uint64_t total = c->warm + c->iters;

	if (ep_open(&e, c, 1))
		return EXIT_FAIL;
	barrier();
	for (uint64_t i = 0; i < total; i++) {
		if (tr->recv(&e, buf))
			return EXIT_FAIL;
		if (!rec_ok(buf, LAT_SIZE, i))
			return child_fail("pong %" PRIu64 ": got record %" PRIu64, i, rec_index(buf));
		if (tr->send(&e, buf, i) || ep_done(&e))
			return EXIT_FAIL;
	}
	ep_close(&e);
	return 0;
}

static void lat_cell(enum lat_kind k)
{
	struct lat_result *res = &lat[k];
	bool spins = k == L_SPSC || k == L_MMAPQ_SPIN;

	res->ran = true;
	res->iters = opt.quick ? 500 : spins ? 200000 : 20000;
	for (int run = 0; run < opt.runs; run++) {
		struct cell c = {.tr = tdefs[ldefs[k].row].tr, .iters = res->iters, .warm = res->iters / 10};
		cell_init(&c);
		c.size = LAT_SIZE;
		c.frame = ring_frame(LAT_SIZE);
		/* a ring of 64 records (only one is ever in flight) */
		for (c.ring_bytes = 64; c.ring_bytes < 64 * (uint64_t)c.frame;)
			c.ring_bytes *= 2;
		c.cap = (uint32_t)(c.ring_bytes / c.frame);
		c.spin_us = k == L_MMAPQ_SPIN ? opt.spin_us : 0;
		if (c.tr->lat_setup(&c, res->why, sizeof(res->why)) < 0 ||
		    run_pair(ping, pong, &c, res->why, sizeof(res->why)) < 0) {
			cell_teardown(&c);
			res->failed = true;
			failed = true;
			note("latency %-30s FAILED: %s", ldefs[k].label, res->why);
			return;
		}
		cell_teardown(&c);
		total_verified += 2 * ctl->verified;
		res->p50[res->nruns] = (double)ctl->p50_ns;
		res->p99[res->nruns] = (double)ctl->p99_ns;
		res->nruns++;
	}
	spread(res->p50, res->nruns, &res->med_p50, &res->lo_p50, &res->hi_p50);
	spread(res->p99, res->nruns, &res->med_p99, &res->lo_p99, &res->hi_p99);
	note("latency %-30s one-way p50 %8.0f ns  p99 %8.0f ns  (%" PRIu64 " round trips x %d)",
	     k == L_MMAPQ_SPIN ? "mmapq, spin" : ldefs[k].label, res->med_p50, res->med_p99,
	     res->iters, res->nruns);
}

void run_latency(void)
{
	struct load_mark m;

	load_mark(&m);
	for (int k = 0; k < NLAT; k++)
		if (opt.only_mask & (1u << ldefs[k].row))
			lat_cell((enum lat_kind)k);
	load_section_end("latency", &m);
}
