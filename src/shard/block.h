/*
 * Blocking commands, shard side (docs/blocking.md): BLPOP, BRPOP, BLMOVE,
 * BRPOPLPUSH, BLMPOP, BZPOPMIN, BZPOPMAX, BZMPOP, XREAD/XREADGROUP BLOCK.
 *
 * A waiter lives on the shard owning its keys, whichever worker holds the
 * client: the handler found nothing, took over its request's reply
 * (forward.h, "Answering later") and left a private copy of its arguments.
 * When a write changes one of its keys the command is run again here; its
 * first answer goes back to the client, once.
 */
#ifndef KV_SHARD_BLOCK_H
#define KV_SHARD_BLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "shard/cmd.h"
#include "shard/forward.h"

/* ---- for forward.c -------------------------------------------------------- */

/* Waiters on this shard (INFO blocked_clients sums them). */
int  kv_block_nwaiting(void);
/* A write changed key: its waiters are tried at the next kv_block_serve. */
void kv_block_signal(const char *key, size_t len);
/* FLUSHALL/FLUSHDB emptied the shard: XREADGROUP waiters are run again
 * (Redis 7.0 answers them -UNBLOCKED, their stream is gone); the others
 * go on waiting on their keys, missing now. */
void kv_block_signal_flush(void);
/* Try the waiters of every ready key, in order of readiness, each key's
 * in the order they blocked; call at top level, shard not locked. */
void kv_block_serve(void);
/* Cancel the waiter whose target is (peer, token) or, local, slot: mode
 * KV_UNBLOCK_TIMEOUT answers the timeout reply, KV_UNBLOCK_ERROR
 * -UNBLOCKED, KV_UNBLOCK_GONE a null (dropped by the requester). */
void kv_block_cancel(int peer, uint64_t token, kv_slot_t *slot, int mode);
/* That worker died: forget its waiters, answering nothing. */
void kv_block_peer_reset(int peer);

/* ---- for the command handlers ---------------------------------------------- */

/*
 * Redis's getTimeoutFromObjectOrReply: argv[i] in seconds (a float:
 * BLPOP ...) or milliseconds (an integer: XREAD BLOCK). *ms is relative,
 * 0 waits forever. 0 after replying Redis's error.
 */
int  kv_block_timeout(kv_client_t *c, int i, int seconds, long long *ms);

/*
 * Nothing to serve now. When the request may wait, register it on the
 * keys argv[first .. first+nkeys) with a copy of argv to run again, take
 * over its reply and return 1: the handler replies nothing. Otherwise
 * (MULTI, a re-run, AOF load, cross-shard) return 0: the handler replies
 * what Redis replies when it cannot block.
 */
int  kv_block_wait(int argc, const kv_resp_arg *argv, int first, int nkeys, long long timeout_ms);

/*
 * While a waiter is run again: the key whose change woke it, NULL
 * otherwise. Redis serves a woken waiter from that key only, and only
 * when it holds the waiter's type (a key of another type keeps it
 * waiting), so the handlers look at nothing else then.
 */
const kv_resp_arg *kv_block_ready_key(void);

static inline int kv_block_is_ready_key(const kv_resp_arg *k)
{
    const kv_resp_arg *r = kv_block_ready_key();
    return r && r->len == k->len && (k->len == 0 || memcmp(r->ptr, k->ptr, k->len) == 0);
}

#endif
