/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h -- CRC-32C (Castagnoli, polynomial 0x1EDC6F41 reflected: 0x82F63B78),
 * the checksum of every frame (mmapq_format.h), as iSCSI, ext4, Btrfs and
 * Kafka use it.  On x86-64 with SSE4.2 it is the crc32 instruction, eight
 * bytes a step (three streams side by side past 768 bytes); elsewhere eight
 * tables, eight bytes a step.  Chosen once, when the library is loaded.
 *
 * crc32c(0, data, n) is the standard CRC-32C of data (initial value and
 * final xor included); crc32c(crc32c(0, a, n), b, m) is that of a then b.
 */
#ifndef MMAPQ_CRC32C_H
#define MMAPQ_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t mmapq_crc32c(uint32_t crc, const void *data, size_t n);
/* A frame's: that of seq (8 bytes) and len (4), in this machine's byte
 * order, then the n payload bytes. */
uint32_t mmapq_crc32c_frame(uint64_t seq, uint32_t len, const void *payload, size_t n);

#endif
