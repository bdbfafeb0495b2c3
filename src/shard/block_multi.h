/*
 * Blocking commands whose keys live on several shards (block_multi.c,
 * docs/blocking.md): the client's worker coordinates; the shards only
 * say when one of the keys may have become ready.
 */
#ifndef KV_SHARD_BLOCK_MULTI_H
#define KV_SHARD_BLOCK_MULTI_H

#include <stddef.h>
#include <stdint.h>

#include "shard/cmd.h"
#include "shard/gather.h"

/* Coordinator: run c's blocking command over its shards (the router saw
 * keys on more than one). */
void kv_bmulti_start(kv_client_t *c, const kv_cmd_t *cmd);
/* s is the slot of such a command: cancel it (forward.h's modes); 1 when
 * s was one. */
int  kv_bmulti_cancel(kv_slot_t *s, int mode);
/* Clients of this worker waiting so (INFO blocked_clients). */
int  kv_bmulti_nwaits(void);
/* A shard told us one of waiter wid's keys changed. */
void kv_bmulti_ready(uint64_t wid);

/* Shard: registrations of other workers' waiters. */
int  kv_bmulti_nregs(void);
void kv_bmulti_signal(const char *key, size_t len);
/* FLUSHALL/FLUSHDB: every registered waiter is told. */
void kv_bmulti_signal_flush(void);

/* Both sides: a worker died. */
void kv_bmulti_peer_reset(int peer);

/* forward.c's side: tell worker `peer` that its waiter wid may go on. */
void kv_fwd_send_bready(int peer, uint64_t wid);

#endif
