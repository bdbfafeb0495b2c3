/* TEMPORARY weak stand-ins until block.c lands (deleted then). */
#include "shard/block.h"
__attribute__((weak)) int  kv_block_nwaiting(void) { return 0; }
__attribute__((weak)) void kv_block_signal(const char *key, size_t len) { (void) key, (void) len; }
__attribute__((weak)) void kv_block_serve(void) {}
__attribute__((weak)) void kv_block_cancel(int peer, uint64_t token, kv_slot_t *slot, int mode) { (void) peer, (void) token, (void) slot, (void) mode; }
__attribute__((weak)) void kv_block_peer_reset(int peer) { (void) peer; }
