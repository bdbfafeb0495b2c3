/*
 * Routing and forwarding: run each command on the shard that owns its
 * keys, and give a connection its replies in command order (DESIGN.md
 * invariant 3) whichever shard produced them.
 *
 * A client with no reply outstanding from a peer writes replies straight
 * into its output buffer. Once one command is forwarded, every later reply
 * of that client goes into a slot in the client's FIFO; slots are moved to
 * the output buffer in order as they complete.
 *
 * Frames (ringio types):
 *   REQ  u64 token | u32 argc | argc x (u32 len | bytes)
 *   REP  u64 token | RESP reply bytes
 * A token names a pending entry of the origin worker: index and serial,
 * so a late reply for a failed or reused entry is recognised and dropped.
 *
 * Ownership: slots and pending entries belong to this module; a slot
 * outlives its client when replies are still due (they are discarded).
 */
#ifndef KV_SHARD_FORWARD_H
#define KV_SHARD_FORWARD_H

#include <uv.h>

#include "event/segment.h"
#include "shard/cmd.h"
#include "shard/conn.h"

typedef struct kv_slot_s kv_slot_t;

int  kv_fwd_start(kv_server_t *srv, uv_loop_t *loop, kv_segment_t *seg, int self, uint32_t spin_us);
void kv_fwd_stop(void);

/* Route c's current command (argc/argv, already found and arity-checked). */
void kv_fwd_dispatch(kv_client_t *c, const kv_cmd_t *cmd);

/*
 * Replies the worker writes itself (unknown command, NOAUTH, protocol
 * errors) must also follow the client's outstanding ones: between hold
 * and release, c->out is a slot of the FIFO when one is needed.
 */
kv_slot_t *kv_fwd_hold(kv_client_t *c);
void kv_fwd_release(kv_client_t *c, kv_slot_t *held);

/* The client is closing: its outstanding replies will be dropped. */
void kv_fwd_client_gone(kv_client_t *c);

#endif
