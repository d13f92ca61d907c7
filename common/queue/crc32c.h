/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h -- CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected: 0x82F63B78),
 * the checksum of every frame (mmapq_format.h), as iSCSI, ext4, Btrfs and
 * Kafka use it.  On x86-64 with SSE4.2 a short input's is the crc32
 * instruction, eight bytes a step; a long one's (MMAPQ_CRC32C_LONG_MIN bytes
 * and more) is folded with carry-less multiplication where the CPU has it
 * (VPCLMULQDQ with AVX-512: 64 bytes a step; PCLMULQDQ: 16), or takes three
 * streams of the crc32 instruction side by side; elsewhere eight tables,
 * eight bytes a step.  Chosen once, when the library is loaded; code
 * compiled for SSE4.2 (ring.c's hot loops) may instead inline a short
 * frame's with mmapq_crc32c_frame_hw where mmapq_crc32c_hw says so.
 *
 * crc32c(0, data, n) is the standard CRC-32C of data (initial value and
 * final xor included); crc32c(crc32c(0, a, n), b, m) is that of a then b.
 */
#ifndef MMAPQ_CRC32C_H
#define MMAPQ_CRC32C_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

uint32_t mmapq_crc32c(uint32_t crc, const void *data, size_t n);
/* A frame's: that of its byte position (8 bytes) and len (4), in this
 * machine's byte order, then the n payload bytes. */
uint32_t mmapq_crc32c_frame(uint64_t byte, uint32_t len, const void *payload, size_t n);
typedef uint32_t mmapq_frame_crc_fn(uint64_t byte, uint32_t len, const void *payload, size_t n);

/* Whether mmapq_crc32c_frame_hw may run here (x86-64 with SSE4.2); set
 * when the library is loaded, before any call can read it. */
extern bool mmapq_crc32c_hw;

/* crc32c.c's instances, for the tests and mmapq_bench_crc to run each one
 * whatever the library chose: "vpclmul", "pclmul", "streams" (x86-64) and
 * "tables"; NULL where this CPU cannot run it.  update takes and returns
 * the register (the crc inverted: mmapq_crc32c(crc, p, n) is
 * ~update(~crc, p, n)).  Not thread-safe: it builds the instance's tables
 * again. */
typedef uint32_t mmapq_crc32c_update_fn(uint32_t reg, const unsigned char *p, size_t n);
struct mmapq_crc32c_instance {
	const char *name;
	mmapq_crc32c_update_fn *update;
	mmapq_frame_crc_fn *frame;
};
const struct mmapq_crc32c_instance *mmapq_crc32c_instance(const char *name);

#if defined(__x86_64__)
/* Inputs from this many bytes on are crc32c.c's (folded, or three
 * streams); shorter ones take the crc32 instruction's short loop, inline
 * in mmapq_crc32c_frame_hw.  Measured with mmapq_bench_crc on a Sapphire
 * Rapids: the folds and the inline loop cross between 64 and 128 bytes (at
 * 128, 11 GB/s inline and 17 folded with VPCLMULQDQ; at 16 KiB, 8 and 83).
 * A CPU with SSE4.2 alone pays a call for the same short loop up to 768
 * bytes, where its three streams start. */
#define MMAPQ_CRC32C_LONG_MIN 128u

/* The crc32 instruction over n bytes, 8 a step (unaligned loads), then 4,
 * 2, 1; c is the register.  Inline: a short record's checksum is then a
 * few instructions in the loop that writes or reads its frame. */
__attribute__((target("sse4.2"), always_inline)) static inline uint64_t
mmapq_crc32c_hw_short(uint64_t c, const unsigned char *p, size_t n)
{
	for (; n >= 8; n -= 8, p += 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
	}
	if (n & 4) {
		uint32_t w;
		memcpy(&w, p, 4);
		c = __builtin_ia32_crc32si((uint32_t)c, w);
		p += 4;
	}
	if (n & 2) {
		uint16_t w;
		memcpy(&w, p, 2);
		c = __builtin_ia32_crc32hi((uint32_t)c, w);
		p += 2;
	}
	if (n & 1)
		c = __builtin_ia32_crc32qi((uint32_t)c, *p);
	return c;
}

/* mmapq_crc32c_frame where mmapq_crc32c_hw, for code compiled for SSE4.2
 * (ring.c's hot paths): inline below MMAPQ_CRC32C_LONG_MIN bytes (an
 * int record's is three crc32 instructions), a call above. */
__attribute__((target("sse4.2"), always_inline)) static inline uint32_t
mmapq_crc32c_frame_hw(uint64_t byte, uint32_t len, const void *payload, size_t n)
{
	uint64_t c;

	if (n >= MMAPQ_CRC32C_LONG_MIN)
		return mmapq_crc32c_frame(byte, len, payload, n);
	c = __builtin_ia32_crc32di(~UINT32_C(0), byte);
	c = __builtin_ia32_crc32si((uint32_t)c, len);
	return ~(uint32_t)mmapq_crc32c_hw_short(c, (const unsigned char *)payload, n);
}
#endif

#endif
