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

/*
 * Other modules' messages between workers (PUBLISH fan-out, keyspace
 * notifications, ...): a frame type of their own (KV_FRAME_USER and up)
 * and a handler; the bytes are valid during the call only.
 */
#define KV_FRAME_USER 16
typedef void kv_fwd_frame_fn(int from, const void *bytes, size_t len);
void kv_fwd_on_frame(uint16_t type, kv_fwd_frame_fn *fn);
int  kv_fwd_send(int peer, uint16_t type, const void *bytes, size_t len);
/* To every other worker. */
void kv_fwd_broadcast(uint16_t type, const void *bytes, size_t len);
int  kv_fwd_nshards(void);

/*
 * Called after a write command changed this shard's keyspace (its db's
 * dirty counter moved), with the arguments as executed: the AOF and
 * replication feed. A handler may replace what is propagated (SPOP as
 * SREM, relative expiries as absolute) with kv_fwd_propagate_as().
 */
typedef void kv_fwd_propagate_fn(struct kv_db_s *db, int argc, const kv_resp_arg *argv);
void kv_fwd_set_propagate(kv_fwd_propagate_fn *fn);
/* From inside a handler: propagate these arguments instead (may be called
 * several times: each call adds one command). */
void kv_fwd_propagate_as(kv_client_t *c, int argc, const kv_resp_arg *argv);
/* Propagate a command no handler ran (MULTI/EXEC around a transaction). */
void kv_fwd_propagate_raw(kv_client_t *c, int argc, const kv_resp_arg *argv);

/* Route the commands dispatched from now on under op (a cross-shard
 * transaction, multi.c), NULL to stop: they take part in its lock. */
struct kv_lockop_s;
struct kv_lockop_s *kv_fwd_under_lock(struct kv_lockop_s *op);   /* returns the previous */
/* Redis's -LOADING text for a shard that is down or restarting, into
 * buf; its length. */
size_t kv_fwd_loading_msg(char *buf, size_t cap, int shard);
/* A reply (RESP bytes) in c's reply order. */
void kv_fwd_reply_raw(kv_client_t *c, const char *msg, size_t len);

/* The client is closing: its outstanding replies will be dropped (a
 * blocked command of it is cancelled where it waits). */
void kv_fwd_client_gone(kv_client_t *c);
/* c's output is written at the end of this loop turn, with whatever else
 * comes for it meanwhile (at once when there are no rings). */
void kv_fwd_flush_later(kv_client_t *c);

/*
 * Answering later (blocking commands, shard/block.c). A handler that
 * cannot answer now takes over the reply of the request it runs for; the
 * router then sends nothing, and the answer goes out later, to the client
 * of this worker or to the worker the request came from.
 */
typedef struct {
    int        peer;            /* the requesting worker; self: local     */
    uint64_t   token;           /* peer's pending entry                   */
    kv_slot_t *slot;            /* local: the client's slot               */
    int        part;
} kv_fwd_target;

/* 1 when the request being run may wait: a client's command (here or
 * forwarded) run on its own, not inside EXEC, a cross-shard operation, a
 * scratch keyspace or a re-run by kv_fwd_run_local. */
int  kv_fwd_can_block(void);
/* Take over the current request's reply (valid only when can_block). */
void kv_fwd_defer_reply(kv_fwd_target *t);
/* Send the deferred reply: b's bytes (b is emptied). */
void kv_fwd_answer(const kv_fwd_target *t, kv_reply_buf *b);
/* Run cmd here on the stand-in client (counted and propagated as any
 * command; it cannot block), its reply appended to out. */
void kv_fwd_run_local(const kv_cmd_t *cmd, int argc, kv_resp_arg *argv, kv_reply_buf *out);
/* 1 while a cross-shard operation holds this shard (waiters are served
 * once it is released). */
int  kv_fwd_locked(void);

/* The client side: c's blocking command (if one is waiting) is cancelled
 * where it waits; mode KV_UNBLOCK_TIMEOUT answers it as a timeout,
 * KV_UNBLOCK_ERROR with -UNBLOCKED, KV_UNBLOCK_GONE drops it. 1 when c had
 * a blocking command outstanding. */
enum { KV_UNBLOCK_TIMEOUT = 0, KV_UNBLOCK_ERROR = 1, KV_UNBLOCK_GONE = 2 };
int  kv_fwd_unblock(kv_client_t *c, int mode);

#endif
