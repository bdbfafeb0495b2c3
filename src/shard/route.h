/*
 * Which shard owns a key. Stable across processes and restarts (no random
 * seed): the on-disk layout depends on it.
 *
 *   hash:  XXH3_64(tag) mod N
 *   slots: Redis Cluster's CRC16(tag) mod 16384, then contiguous ranges:
 *          shard = slot * N / 16384
 *
 * where tag is the key, or the part between the first '{' and the next
 * '}' when that part is not empty (Redis's hash tags).
 */
#ifndef KV_SHARD_ROUTE_H
#define KV_SHARD_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define KV_SLOTS 16384

void     kv_route_init(int nshards, int routing);
int      kv_route_nshards(void);
int      kv_route_shard(const char *key, size_t len);
uint16_t kv_route_slot(const char *key, size_t len);
uint16_t kv_crc16(const char *buf, size_t len);

#endif
