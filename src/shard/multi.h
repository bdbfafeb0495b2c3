/*
 * Transactions (multi.c): MULTI/EXEC/DISCARD/WATCH/UNWATCH with Redis's
 * semantics for transactions that keep to one shard; see multi.c.
 */
#ifndef KV_SHARD_MULTI_H
#define KV_SHARD_MULTI_H

#include "shard/cmd.h"

typedef struct kv_multi_s kv_multi_t;

/* The client is inside MULTI and cmd (NULL: unknown) is to be queued or
 * refused rather than run. */
int  kv_multi_queueing(kv_client_t *c, const kv_cmd_t *cmd);
/* Queue the current command (+QUEUED). */
void kv_multi_queue(kv_client_t *c, const kv_cmd_t *cmd);
/* A command was refused while queueing: EXEC will answer EXECABORT. */
void kv_multi_flag(kv_client_t *c);
/* RESET: leave MULTI, drop the queue and the watches. */
void kv_multi_reset(kv_client_t *c);
/* The client is closing. */
void kv_multi_client_gone(kv_client_t *c);
/* A cross-shard EXEC of c has begun to run its commands: it must run to
 * its end, client or not, so c's teardown waits for it (conn.c). */
int  kv_multi_running(const kv_client_t *c);
/* c's barrier was lifted: a cross-shard EXEC of c goes on; 1 while it
 * still runs (its next commands keep waiting). */
int  kv_multi_resume(kv_client_t *c);

#endif
