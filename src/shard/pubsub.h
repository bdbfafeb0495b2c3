/*
 * Pub/Sub: the subscriptions of this worker's clients and delivery to
 * them (Redis 7.0, RESP2).
 *
 * Subscribers live on whichever worker holds their connection. A PUBLISH
 * runs on the publisher's worker, which runs the command's per-shard part
 * on every worker (forwarding layer requests, one slot in the publisher's
 * reply FIFO); each worker delivers to its own subscribers and answers its
 * count; the counts are summed (a worker that is restarting counts 0).
 * Each publisher's messages travel one path per (publisher worker,
 * subscriber worker) pair, FIFO, so every subscriber sees them in order.
 *
 * Keyspace notifications (notify.c) are delivered here too.
 *
 * Ownership: a client's subscription state hangs off c->ps and is freed by
 * kv_pubsub_client_gone() when the client closes.
 */
#ifndef KV_SHARD_PUBSUB_H
#define KV_SHARD_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "shard/cmd.h"
#include "shard/conn.h"

/* Deliver to this worker's subscribers: channel subscribers and pattern
 * subscribers (shard = 0), or shard-channel subscribers (shard = 1).
 * Returns the number of deliveries (Redis's receiver count). */
long long kv_pubsub_deliver(const char *ch, size_t chlen, const char *msg, size_t mlen, int shard);

/* The client is closing: drop its subscriptions. */
void kv_pubsub_client_gone(kv_client_t *c);

/* Subscription counts (CLIENT LIST sub=, psub=, ssub=). */
void kv_pubsub_counts(const kv_client_t *c, int *sub, int *psub, int *ssub);

/* c is in subscribed mode (RESP2 context). */
int kv_pubsub_active(const kv_client_t *c);

/* Subscribed mode allows only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING,
 * QUIT, RESET: 1 after replying Redis's error for any other command. */
int kv_pubsub_refuse(kv_client_t *c, const kv_cmd_t *cmd);

/* RESET: unsubscribe from everything silently, leave subscribed mode. */
void kv_pubsub_reset(kv_client_t *c);

/* client-output-buffer-limit pubsub <hard> <soft> <seconds> (0: none). */
void kv_pubsub_set_limits(uint64_t hard, uint64_t soft, uint64_t soft_secs);
void kv_pubsub_get_limits(uint64_t *hard, uint64_t *soft, uint64_t *soft_secs);

/* Every channel / shard channel / pattern of this worker (PUBSUB). */
typedef void kv_pubsub_each_fn(void *ud, const char *name, size_t len, size_t nsubs);
void kv_pubsub_each(int kind, kv_pubsub_each_fn *fn, void *ud);   /* 0 ch, 1 pattern, 2 shard ch */
size_t kv_pubsub_numsub(int kind, const char *name, size_t len);
size_t kv_pubsub_npatterns(void);

/* Commands of cmd_pubsub.c that manage a client's subscriptions. kind: 0
 * channels, 1 patterns, 2 shard channels. */
void kv_pubsub_subscribe(kv_client_t *c, int kind);
void kv_pubsub_unsubscribe(kv_client_t *c, int kind);

#endif
