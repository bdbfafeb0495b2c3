/*
 * Commands that span shards: split into per-shard parts, run each where
 * its keys live, combine the parts into the one reply Redis would give.
 *
 *   DEL UNLINK EXISTS TOUCH  -> per-shard counts, summed
 *   MGET                     -> per-shard arrays, put back in key order
 *   MSET                     -> per-shard MSETs, +OK when all are
 *   DBSIZE KEYS FLUSHDB FLUSHALL RANDOMKEY (every shard) -> sum, concat,
 *                               +OK, one of the non-nil keys
 *
 * A split runs under the locks of its shards (lock.h): atomic.
 */
#ifndef KV_SHARD_GATHER_H
#define KV_SHARD_GATHER_H

#include "shard/cmd.h"
#include "shard/conn.h"

typedef struct kv_slot_s kv_slot_t;
typedef void kv_gather_fn(kv_slot_t *s);

struct kv_slot_s {
    kv_slot_t     *next;        /* the client's FIFO                      */
    kv_client_t   *client;      /* NULL once the client has gone          */
    int            outstanding; /* parts not answered yet                 */
    int            nparts;
    kv_gather_fn  *combine;     /* NULL: one part, written to out directly */
    const kv_cmd_t *cmd;        /* the command being combined             */
    int            barrier;     /* its client waits for it to finish      */
    void          *cdata;       /* combiner's data, freed with the slot   */
    struct kv_lockop_s *lock;   /* runs under this cross-shard lock (lock.h) */
    int            lock_ref;    /* ... and keeps it until it completes     */
    kv_reply_buf   out;         /* the reply, complete when outstanding 0 */
    kv_reply_buf   parts[];     /* with combine: one buffer per part      */
};

/* The argument positions of the command's keys (idx holds argc entries):
 * their count, or -1 when the arguments are malformed. */
int  kv_gather_keys(kv_client_t *c, const kv_cmd_t *cmd, int *idx);
/* The shard owning every key of the command, or -1 when they span shards
 * (malformed arguments: this worker, whose handler will reply the error). */
int  kv_gather_single_owner(kv_client_t *c, const kv_cmd_t *cmd);
/* Split a KEYS-routed command over the shards of its keys. */
void kv_gather_split(kv_client_t *c, const kv_cmd_t *cmd);
/* Run on every shard and combine. */
void kv_gather_all(kv_client_t *c, const kv_cmd_t *cmd);

/* forward.c's side, for gather.c. */
kv_slot_t *kv_fwd_slot(kv_client_t *c, int nparts, kv_gather_fn *combine);
void kv_fwd_part(kv_slot_t *s, int part, int shard, const kv_cmd_t *cmd, int argc, kv_resp_arg *argv);
/* A slot no client waits for (fire and forget, e.g. UNWATCH of a client
 * that left): its replies are dropped and it frees itself. */
kv_slot_t *kv_fwd_detached(int nparts, kv_gather_fn *combine);
/* A part finished without kv_fwd_part (or a chain's first step). */
void kv_fwd_part_done(kv_slot_t *s);
/* End of the RESP element at p (bounded by end). */
const char *kv_gather_elem_end(const char *p, const char *end);
/* A part's reply as one NUL-terminated string (the buffer is emptied). */
char *kv_gather_flatten(kv_reply_buf *b, size_t *len);
int  kv_fwd_self(void);
/* A slot for c's blocking command: its next commands wait for it. */
kv_slot_t *kv_fwd_blocking_slot(kv_client_t *c);
/* s sends more parts after this call returns (a chain's later rounds): it
 * keeps its lock until it completes. Other slots send every part while
 * they are routed, so the lock can go as soon as routing is over. */
void kv_fwd_keep_lock(kv_slot_t *s);
/* Run cmd here as the router does (counted, propagated to the AOF). */
void kv_fwd_call(kv_client_t *c, const kv_cmd_t *cmd);
kv_server_t *kv_fwd_server(void);

#endif
