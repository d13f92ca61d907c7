/* SPDX-License-Identifier: MIT */
/*
 * transport_spsc.c -- the near-physical reference: a minimal lock-free
 * single-producer single-consumer ring in a shared anonymous mapping, each
 * record in a slot of the bytes mmapq's frame of it takes (an 8-byte
 * header, here its length and sequence number where mmapq has its length
 * and checksum, then the record rounded up to 8), as many slots as a power
 * of two allows in mmapq's ring bytes; head and tail on cache lines of
 * their own, each published every c->batch records; waits spin (pause,
 * then sched_yield).  Not crash-safe, not persistent, no checksum; not a
 * peer.  The ping-pong publishes every record.
 */
#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "bench.h"

/* A slot's header: what the consumer checks besides the record's bytes. */
struct spsc_slot {
	uint32_t len;
	uint32_t seq; /* the record's sequence number, its low 32 bits */
};

/* The ring's header, then cap slots of c->frame bytes. */
struct ring {
	uint64_t tail;                  /* written by the producer (release) */
	uint8_t pad0[56];
	uint64_t head;                  /* written by the consumer (release) */
	uint8_t pad1[56];
};

static void relax(unsigned *spins)
{
	if (++*spins < 2048)
		__builtin_ia32_pause();
	else
		sched_yield(); /* also what makes one CPU work */
}

static unsigned char *ring_slot(struct ring *rg, const struct cell *c, uint64_t seq)
{
	return (unsigned char *)(rg + 1) + (size_t)(seq & (c->cap - 1)) * c->frame;
}

/* n rings: one for throughput, one each way for latency; of the records
 * mmapq's ring holds (c->cap), as many as a power of two allows, so that a
 * slot's index is a mask */
static int rings_map(struct cell *c, int n, char *why, size_t whylen)
{
	c->cap = pow2_floor(c->cap);
	c->ring_len = sizeof(struct ring) + (size_t)c->cap * c->frame;
	for (int i = 0; i < n; i++) {
		c->ring[i] = mmap(NULL, c->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (c->ring[i] == MAP_FAILED) {
			c->ring[i] = NULL;
			snprintf(why, whylen, "mmap: %s", strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int spsc_setup(struct cell *c, char *why, size_t whylen)
{
	return rings_map(c, 1, why, whylen);
}

static int spsc_prod(struct cell *c)
{
	struct ring *rg = c->ring[0];
	uint64_t tail = 0, pub = 0, head = 0;

	barrier();
	ctl->t_start = now_ns();
	for (uint64_t seq = 0; seq < c->n; seq++) {
		if (tail - head == c->cap) {
			unsigned spins = 0;
			if (pub != tail) {
				/* release: the slots written become visible to the consumer */
				__atomic_store_n(&rg->tail, tail, __ATOMIC_RELEASE);
				pub = tail;
			}
			/* acquire: pairs with the consumer's release of head */
			while ((head = __atomic_load_n(&rg->head, __ATOMIC_ACQUIRE)) + c->cap == tail)
				relax(&spins);
		}
		unsigned char *s = ring_slot(rg, c, tail);
		struct spsc_slot *h = (struct spsc_slot *)s;
		/* the record made in its slot: no staging copy (the strongest
		 * way to use a ring of fixed slots; mmapq's job copies each
		 * record once, from its staging buffer into the frame) */
		rec_fill(s + sizeof(*h), c->size, seq);
		h->seq = (uint32_t)tail;
		h->len = c->size;
		tail++;
		if (tail - pub >= c->batch) {
			__atomic_store_n(&rg->tail, tail, __ATOMIC_RELEASE); /* pairs as above */
			pub = tail;
		}
	}
	__atomic_store_n(&rg->tail, tail, __ATOMIC_RELEASE);
	record_rusage(0);
	return 0;
}

static int spsc_cons(struct cell *c)
{
	struct ring *rg = c->ring[0];
	uint64_t head = 0, pub = 0, tail = 0;

	barrier();
	for (uint64_t exp = 0; exp < c->n; exp++) {
		if (head == tail) {
			unsigned spins = 0;
			if (pub != head) {
				/* release: our reads of the slots happen before their reuse */
				__atomic_store_n(&rg->head, head, __ATOMIC_RELEASE);
				pub = head;
			}
			/* acquire: pairs with the producer's release of tail */
			while ((tail = __atomic_load_n(&rg->tail, __ATOMIC_ACQUIRE)) == head)
				relax(&spins);
		}
		const unsigned char *s = ring_slot(rg, c, head);
		const struct spsc_slot *h = (const struct spsc_slot *)s;
		if (h->seq != (uint32_t)exp || h->len != c->size || !rec_ok(s + sizeof(*h), c->size, exp))
			return child_fail("spsc record %" PRIu64 ": got seq %" PRIu32 " len %" PRIu32
			                  " content of record %" PRIu64, exp, h->seq, h->len,
			                  rec_index(s + sizeof(*h)));
		head++;
		if (head - pub >= c->batch) {
			__atomic_store_n(&rg->head, head, __ATOMIC_RELEASE); /* pairs as above */
			pub = head;
		}
	}
	ctl->t_end = now_ns();
	ctl->verified = c->n;
	__atomic_store_n(&rg->head, head, __ATOMIC_RELEASE);
	record_rusage(1);
	return 0;
}

/* ---- ping-pong ------------------------------------------------------------------ */

static int spsc_lat_setup(struct cell *c, char *why, size_t whylen)
{
	return rings_map(c, 2, why, whylen);
}

/* Ring 0 carries side 0 -> side 1, ring 1 the way back. */
static int spsc_ep_open(struct ep *e, struct cell *c, int side)
{
	e->rtx = c->ring[side];
	e->rrx = c->ring[!side];
	return 0;
}

static int spsc_send(struct ep *e, const void *buf, uint64_t i)
{
	struct ring *rg = e->rtx;
	unsigned spins = 0;
	/* acquire: pairs with the reader's release of head */
	while (__atomic_load_n(&rg->head, __ATOMIC_ACQUIRE) + e->c->cap == e->tx_tail)
		relax(&spins);
	unsigned char *s = ring_slot(rg, e->c, e->tx_tail);
	struct spsc_slot *h = (struct spsc_slot *)s;
	h->seq = (uint32_t)i;
	h->len = LAT_SIZE;
	memcpy(s + sizeof(*h), buf, LAT_SIZE);
	/* release: the slot becomes visible to the reader's acquire of tail */
	__atomic_store_n(&rg->tail, ++e->tx_tail, __ATOMIC_RELEASE);
	return 0;
}

static int spsc_recv(struct ep *e, void *buf)
{
	struct ring *rg = e->rrx;
	unsigned spins = 0;
	/* acquire: pairs with the writer's release of tail */
	while (__atomic_load_n(&rg->tail, __ATOMIC_ACQUIRE) == e->rx_head)
		relax(&spins);
	unsigned char *s = ring_slot(rg, e->c, e->rx_head);
	memcpy(buf, s + sizeof(struct spsc_slot), LAT_SIZE);
	/* release: our read of the slot happens before its reuse */
	__atomic_store_n(&rg->head, ++e->rx_head, __ATOMIC_RELEASE);
	return 0;
}

const struct transport tr_spsc = {
	.setup = spsc_setup, .prod = spsc_prod, .cons = spsc_cons,
	.lat_setup = spsc_lat_setup, .ep_open = spsc_ep_open, .send = spsc_send, .recv = spsc_recv,
};
