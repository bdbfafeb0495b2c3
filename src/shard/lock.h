/*
 * Shard locks: what makes a command or a transaction that spans shards
 * atomic and isolated (docs/transactions.md).
 *
 * An operation that touches several shards locks each of them, in
 * ascending shard order (so two operations never wait for each other in a
 * cycle), runs its parts, and releases them. A locked shard runs only the
 * holder's requests; every other request -- from another worker, or a
 * command of this worker's own clients on this shard -- waits in one FIFO
 * and runs, in arrival order, once the lock is released. Nothing ever
 * observes an operation half done.
 *
 * Another worker's shard is locked through this worker's *hold* on it,
 * which this worker's operations use one after the other; an idle hold
 * goes back at the end of the loop turn (lock.c, kv_lock_turn_end).
 *
 * Two sides, both in every worker:
 *   shard side        the lock of this worker's shard, and its wait FIFO;
 *   coordinator side  operations this worker runs for its clients
 *                     (kv_lockop_t), each holding some shards.
 *
 * Ownership: lock.c owns the FIFO entries (copies of what waits) and the
 * operations; an operation lives until its last reference is dropped,
 * which releases every shard it holds.
 */
#ifndef KV_SHARD_LOCK_H
#define KV_SHARD_LOCK_H

#include <stddef.h>
#include <stdint.h>

#include "shard/cmd.h"
#include "shard/conn.h"

typedef struct kv_slot_s kv_slot_t;
typedef struct kv_lockop_s kv_lockop_t;

/* ---- shard side ----------------------------------------------------------- */

/* Locked, or requests already waiting: new work must wait behind them. */
int  kv_lock_busy(void);
/* This shard is locked by operation id of worker peer. */
int  kv_lock_held_by(int peer, uint64_t id);
/* op holds this worker's own shard. */
int  kv_lock_holds_self(const kv_lockop_t *op);
/* A frame from a peer waits (its bytes are copied). */
void kv_lock_defer_frame(int from, uint16_t type, const void *bytes, size_t len);
/* A command to run on this shard waits; its reply goes to part `part` of
 * slot s (argv is copied). */
void kv_lock_defer_local(kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc, const kv_resp_arg *argv);
/* Frames of the protocol (forward.c decodes them). */
void kv_lock_on_lock(int from, uint64_t id);
void kv_lock_on_unlock(int from, uint64_t id);
void kv_lock_on_locked(int from, uint64_t id);
/* A peer died: its lock and everything it had waiting go; operations of
 * ours waiting for it fail. */
void kv_lock_peer_reset(int peer);

/* ---- coordinator side ----------------------------------------------------- */

/* Called once: every shard locked (failed < 0), or shard `failed` could
 * not be locked (down or restarting; the shards locked so far are still
 * held until the last unref). */
typedef void kv_lock_cb(kv_lockop_t *op, int failed, void *data);

/* A hold on another worker's shard serves at most this many operations
 * of ours before it is asked anew, behind whoever waits there. Larger
 * batches cost fewer round trips between the workers (pipelined
 * cross-shard MULTI/EXEC: 64 -> 256 took 200k to 265k tx/s on one CPU);
 * smaller ones let the other worker in sooner. */
#define KV_LOCK_HOLD_PASSES 256

/* Lock `shards` (any order, duplicates allowed) for client c. cb gets
 * the operation with one reference, which it owns; cb may run before this
 * returns. */
void kv_lock_acquire(const int *shards, int n, kv_client_t *c, kv_lock_cb *cb, void *data);
void kv_lock_ref(kv_lockop_t *op);
/* The last reference releases every shard the operation holds. */
void kv_lock_unref(kv_lockop_t *op);
uint64_t kv_lock_id(const kv_lockop_t *op);
/* The id op's requests to shard carry (LREQ): its hold's there. */
uint64_t kv_lock_wire_id(const kv_lockop_t *op, int shard);
/* A request outside any lock is about to go to shard sh (a plain REQ,
 * which waits there while the shard is locked): our hold there, if any,
 * is given back (idle) or closed to new users, so that no later operation
 * of ours runs there before it. */
void kv_lock_before_request(int sh);
/* End of a loop turn: holds of other shards nobody uses go back. */
void kv_lock_turn_end(void);
/* The client the operation runs for; NULL once it has disconnected. */
kv_client_t *kv_lock_client(const kv_lockop_t *op);
void kv_lock_client_gone(kv_client_t *c);

/* forward.c's side, called from the FIFO: run a frame that waited, or a
 * local command that waited. */
void kv_fwd_replay_frame(int from, uint16_t type, const void *bytes, size_t len);
void kv_fwd_run_waiting(kv_slot_t *s, int part, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv);
/* The lock was released and nothing waits: blocked clients may be served. */
void kv_fwd_unlocked(void);
/* Send a lock frame (LOCK, LOCKED, UNLOCK) carrying id. */
int  kv_fwd_send_lock_frame(int peer, int which, uint64_t id);
enum { KV_LOCK_FRAME_LOCK, KV_LOCK_FRAME_LOCKED, KV_LOCK_FRAME_UNLOCK };
/* 1 when the peer's worker is up (requests to it would be answered). */
int  kv_fwd_peer_up(int peer);

#endif
