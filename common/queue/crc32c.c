/* SPDX-License-Identifier: MIT */
/* crc32c.c -- CRC-32C (crc32c.h). */
#include "crc32c.h"

#include <pthread.h>
#include <string.h>

#define POLY UINT32_C(0x82f63b78)

static uint32_t table[8][256];

static void make_tables(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xff];
}

/* Slicing by 8: eight bytes a step, from eight tables. */
static uint32_t crc_tables(uint32_t crc, const unsigned char *p, size_t n)
{
	while (n && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
		w = __builtin_bswap64(w);
#endif
		w ^= crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
	}
	while (n--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xff];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p,
                                                            size_t n)
{
	uint64_t c = crc;

	while (n && ((uintptr_t)p & 7)) {
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
		n--;
	}
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	while (n--)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
	return (uint32_t)c;
}
#endif

typedef uint32_t crc_fn(uint32_t crc, const unsigned char *p, size_t n);

static crc_fn *choose(void)
{
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("sse4.2"))
		return crc_sse42;
#endif
	make_tables();
	return crc_tables;
}

static crc_fn *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void choose_once(void)
{
	chosen = choose();
}

uint32_t mmapq_crc32c(uint32_t crc, const void *data, size_t n)
{
	pthread_once(&once, choose_once);
	return ~chosen(~crc, data, n);
}

uint32_t mmapq_crc32c_frame(uint64_t seq, uint32_t len, const void *payload, size_t n)
{
	unsigned char head[12];
	uint32_t c;

	pthread_once(&once, choose_once);
	memcpy(head, &seq, 8);
	memcpy(head + 8, &len, 4);
	c = chosen(~UINT32_C(0), head, sizeof(head));
	return ~chosen(c, payload, n);
}
