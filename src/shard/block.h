/*
 * Blocking commands, the shard side (block.c; docs/blocking.md).
 */
#ifndef KV_SHARD_BLOCK_H
#define KV_SHARD_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "shard/forward.h"

int  kv_block_nwaiting(void);
void kv_block_signal(const char *key, size_t len);
void kv_block_serve(void);
void kv_block_cancel(int peer, uint64_t token, kv_slot_t *slot, int mode);
void kv_block_peer_reset(int peer);

#endif
