/*
 * CRC-64 as Redis computes it for DUMP payloads and RDB files: the Jones
 * polynomial (0xad93d23594c935a9), reflected input and output, initial
 * value 0, no final xor ("CRC-64/Jones" in Redis's crc64.c; check value
 * of "123456789" is 0xe9c6d914c4b8d9ca). Byte-identical checksums are
 * what lets redis-server and redis-check-rdb accept kevy's payloads and
 * files, and kevy accept theirs.
 *
 * Slicing-by-8 tables are built once, thread-safely, on first use.
 * Incremental: crc = kv_crc64(crc, chunk, n) over consecutive chunks
 * equals one call over their concatenation (start from 0).
 */
#ifndef KV_CORE_CRC64_H
#define KV_CORE_CRC64_H

#include <stddef.h>
#include <stdint.h>

uint64_t kv_crc64(uint64_t crc, const void *p, size_t n);

#endif
